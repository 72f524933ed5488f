// Machine's snapshot and restore (issue 13).
//
// The state file's sections (vmm/snapshot/StateFile), each the owner's encoding:
//   MCFG 0     the machine to build again (SavedConfig)
//   MEMF 0     the memory file's id and RAM regions (MemoryFile)
//   PCID slot  each PCI device: its vendor and device ID, configuration header and own state; for a
//   virtio
//              device the driver's state, ISR, MSI-X table and PBA, queue positions and the
//              device's state (PciBus::saveDevice, VirtioPciTransport::saveState)
//   UART 0     COM1 (Uart8250)       KBDC 0  the i8042 and its keyboard (I8042)
//   CMOS 0     the RTC (CmosRtc)     ACPI 0  ACPI PM's sleep status (AcpiPm)
//   VMST 0     the PICs, IOAPIC, PIT and kvmclock (kvm/VmState)
//   VCPU i     every vCPU's registers, MSRs, LAPIC, events and run state (kvm/VcpuState)
// Saved in that order while paused: the devices first, because completing what they have in
// flight may raise interrupts that the interrupt controllers' and LAPICs' state must then hold.
// Restored into a machine built from MCFG, before any vCPU runs: the interrupt controllers,
// the vCPUs, the legacy devices, then the PCI devices (whose activation may look at queues).
#include <sys/random.h>

#include <chrono>

#include "kvm/Log.h"
#include "kvm/VcpuState.h"
#include "kvm/VmState.h"
#include "vmm/Machine.h"
#include "vmm/snapshot/MemoryFile.h"
#include "vmm/snapshot/SavedConfig.h"

namespace ember::vmm {

using kvm::VcpuState;
using kvm::VmState;
using layout::MiB;

namespace {
constexpr std::string_view kConfigTag = "MCFG", kMemoryTag = "MEMF", kPciTag = "PCID",
                           kUartTag = "UART", kKeyboardTag = "KBDC", kCmosTag = "CMOS",
                           kAcpiTag = "ACPI", kVmTag = "VMST", kVcpuTag = "VCPU";

// A section's bytes, or an error naming what is missing.
Result<std::span<const uint8_t>> section(const StateFile& file, std::string_view tag,
                                         uint32_t instance, const std::string& path) {
  const auto* bytes = file.find(tag, instance);
  if (bytes == nullptr) {
    return makeError(Errc::Format, "state file {}: it has no section {} {}", path, tag, instance);
  }
  return std::span<const uint8_t>(*bytes);
}

// Decodes a section whole with DECODE(reader): an error names the section.
template <typename F>
Result<void> readSection(const StateFile& file, std::string_view tag, uint32_t instance,
                         const std::string& path, F&& decode) {
  auto bytes = EMBER_TRY(section(file, tag, instance, path));
  StateReader r(bytes, fmt::format("state file {}: section {} {}", path, tag, instance));
  EMBER_TRY(decode(r));
  return r.finish();
}

// The KVM capabilities a snapshot's vCPU and VM state are saved and restored with: WHAT says
// which of the two needs them. KVM_CAP_XCRS is needed only by a state that holds XCRs (see
// kvm/VcpuState.h), which restoreState checks per vCPU.
Result<void> requireCapabilities(const kvm::KvmSystem& kvm, std::string_view what) {
  static constexpr std::pair<long, const char*> kNeeded[] = {
      {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},         {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
      {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"}, {KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK"},
      {KVM_CAP_PIT2, "KVM_CAP_PIT2"},           {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"}};
  for (auto [cap, name] : kNeeded) {
    if (kvm.checkExtension(cap) <= 0) {
      return makeError(Errc::Unsupported,
                       "{}: this host's KVM lacks {}, which the saved vCPU and "
                       "VM state needs",
                       what, name);
    }
  }
  return okResult();
}

struct MemoryRecord {
  MemoryFile::Id id{};
  std::vector<GuestRegionSpec> regions;
};

void encodeMemory(const MemoryRecord& m, StateWriter& w) {
  w.raw(m.id);
  w.u32(static_cast<uint32_t>(m.regions.size()));
  for (const auto& r : m.regions) {
    w.u64(r.start.raw);
    w.u64(r.size);
  }
}

MemoryRecord decodeMemory(StateReader& r) {
  MemoryRecord m;
  auto id = r.raw(m.id.size(), "memory file id");
  if (r.ok()) std::copy(id.begin(), id.end(), m.id.begin());
  uint32_t n = r.count("RAM regions", MemoryFile::kMaxRegions);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    uint64_t start = r.u64("region start");
    uint64_t size = r.u64("region size");
    m.regions.push_back({GuestAddress(start), size});
  }
  return m;
}
}  // namespace

Result<MachineConfig> Machine::restoredConfig(const MachineConfig& config,
                                              std::optional<StateFile>& state) {
  const std::string& path = config.restore->state_path;
  state.emplace(EMBER_TRY(StateFile::read(path)));
  MachineConfig saved;
  EMBER_TRY(readSection(*state, kConfigTag, 0, path, [&](StateReader& r) -> Result<void> {
    saved = SavedConfig::decode(r);
    return okResult();
  }));
  auto merged = SavedConfig::merge(saved, config);
  if (!merged) return makeError(merged.error().code, "--restore: {}", merged.error().message);
  return merged;
}

Result<GuestMemory> Machine::restoredMemory(const StateFile& state,
                                            std::span<const GuestRegionSpec> regions) const {
  const std::string& path = config_.restore->state_path;
  MemoryRecord m;
  EMBER_TRY(readSection(state, kMemoryTag, 0, path, [&](StateReader& r) -> Result<void> {
    m = decodeMemory(r);
    return okResult();
  }));
  if (!std::equal(m.regions.begin(), m.regions.end(), regions.begin(), regions.end())) {
    return makeError(Errc::Format, "state file {}: its RAM regions are not those of its {} MiB",
                     path, config_.memory / MiB);
  }
  UniqueFd fd = EMBER_TRY(MemoryFile::open(config_.restore->mem_path, m.id, regions));
  // The mappings keep the file; the fd may close.
  return GuestMemory::mapFile(regions, fd.get(), MemoryFile::kHeaderBytes);
}

Result<void> Machine::restoreState(const StateFile& state,
                                   std::chrono::steady_clock::time_point started) {
  const std::string& path = config_.restore->state_path;
  EMBER_TRY(requireCapabilities(*kvm_, "restore"));
  // The interrupt controllers first, then the vCPUs (their LAPICs after the IOAPIC).
  EMBER_TRY(readSection(state, kVmTag, 0, path, [&](StateReader& r) -> Result<void> {
    VmState s = VmState::decode(r);
    EMBER_TRY(r.finish());
    return s.restore(*vm_);
  }));
  if (state.count(kVcpuTag) != vcpus_.size()) {
    return makeError(Errc::Format, "state file {}: {} vCPU sections for {} vCPUs", path,
                     state.count(kVcpuTag), vcpus_.size());
  }
  for (auto& v : vcpus_) {
    EMBER_TRY(
        readSection(state, kVcpuTag, v->vcpu().id(), path, [&](StateReader& r) -> Result<void> {
          VcpuState s = VcpuState::decode(r);
          EMBER_TRY(r.finish());
          if (s.xcrs.nr_xcrs > 0 && kvm_->checkExtension(KVM_CAP_XCRS) <= 0) {
            return makeError(Errc::Unsupported,
                             "restore: vCPU {} saved XCR0 (the snapshot's host had XSAVE), and "
                             "this host's KVM lacks KVM_CAP_XCRS to set it",
                             v->vcpu().id());
          }
          return s.restore(v->vcpu());
        }));
  }
  auto load = [&](std::string_view tag, auto& device) {
    return readSection(state, tag, 0, path, [&](StateReader& r) -> Result<void> {
      device.load(r);
      return okResult();
    });
  };
  EMBER_TRY(load(kUartTag, *com1_));
  EMBER_TRY(load(kKeyboardTag, *i8042_));
  EMBER_TRY(load(kCmosTag, *cmos_));
  EMBER_TRY(load(kAcpiTag, *acpi_pm_));
  const auto slots = pci_->occupiedSlots();
  const size_t pci_devices = slots.size();
  for (uint8_t slot : slots) {
    EMBER_TRY(readSection(state, kPciTag, slot, path, [&](StateReader& r) -> Result<void> {
      return pci_->loadDevice(slot, r);
    }));
  }
  if (state.count(kPciTag) != pci_devices) {
    return makeError(Errc::Format, "state file {}: {} PCI sections for this machine's {} devices",
                     path, state.count(kPciTag), pci_devices);
  }
  start_paused_ = !config_.restore->resume;
  // tools/bench's snapshot row reads this line's milliseconds.
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::info("restore: {} vCPU(s), {} PCI device(s) and {} MiB of RAM from {} and {} in {:.2f} ms",
            vcpus_.size(), pci_devices, config_.memory / MiB, path, config_.restore->mem_path, ms);
  return okResult();
}

Result<Machine::SnapshotInfo> Machine::snapshot(const std::string& state_path,
                                                const std::string& mem_path) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitRunning(lock));
  if (!paused_) {
    return makeError(Errc::Busy, "the VM is running; pause it first (PATCH /vm Paused)");
  }
  EMBER_TRY(SavedConfig::check(config_));
  EMBER_TRY(requireCapabilities(*kvm_, "snapshot"));
  StateFile file;
  // The machine as it is now: a disk whose medium PATCH /drives replaced is saved with its new
  // image.
  MachineConfig now = config_;
  for (size_t i = 0; i < disks_.size() && i < now.disks.size(); ++i) {
    now.disks[i].path = disks_[i]->file().path();
  }
  StateWriter cfg;
  SavedConfig::encode(now, cfg);
  EMBER_TRY(file.add(kConfigTag, 0, cfg.take()));
  MemoryRecord mem;
  if (::getrandom(mem.id.data(), mem.id.size(), 0) != static_cast<ssize_t>(mem.id.size())) {
    return Error::fromErrno(Errc::Io, "getrandom for the snapshot's id");
  }
  for (const auto& r : memory_.regions()) mem.regions.push_back({r.start, r.size});
  StateWriter mw;
  encodeMemory(mem, mw);
  EMBER_TRY(file.add(kMemoryTag, 0, mw.take()));
  // The devices first: completing their in-flight requests raises interrupts.
  for (uint8_t slot : pci_->occupiedSlots()) {
    StateWriter w;
    EMBER_TRY(pci_->saveDevice(slot, w));
    EMBER_TRY(file.add(kPciTag, slot, w.take()));
  }
  auto save = [&](std::string_view tag, const auto& device) {
    StateWriter w;
    device.save(w);
    return file.add(tag, 0, w.take());
  };
  EMBER_TRY(save(kUartTag, *com1_));
  EMBER_TRY(save(kKeyboardTag, *i8042_));
  EMBER_TRY(save(kCmosTag, *cmos_));
  EMBER_TRY(save(kAcpiTag, *acpi_pm_));
  StateWriter vw;
  EMBER_TRY(VmState::capture(*vm_)).encode(vw);
  EMBER_TRY(file.add(kVmTag, 0, vw.take()));
  auto msrs = EMBER_TRY(kvm_->msrIndexList());
  const bool with_xcrs = kvm_->checkExtension(KVM_CAP_XCRS) > 0;
  for (const auto& v : vcpus_) {
    StateWriter w;
    EMBER_TRY(VcpuState::capture(v->vcpu(), msrs, with_xcrs)).encode(w);
    EMBER_TRY(file.add(kVcpuTag, v->vcpu().id(), w.take()));
  }
  // The memory file first: a state file on disk always has its memory file.
  auto written = EMBER_TRY(MemoryFile::write(mem_path, memory_, mem.id));
  uint64_t state_bytes = EMBER_TRY(file.write(state_path));
  SnapshotInfo info;
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  info.state_bytes = state_bytes;
  info.memory_bytes = written.file_bytes;
  info.memory_written = written.data_bytes;
  log::info("snapshot: {} ({} bytes) and {} ({} MiB, {} MiB written) in {:.3f} s", state_path,
            info.state_bytes, mem_path, info.memory_bytes >> 20, info.memory_written >> 20,
            info.seconds);
  return info;
}

}  // namespace ember::vmm
