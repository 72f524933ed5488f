// Machine assembly and the run/stop sequence.
#include "vmm/Machine.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "devices/AcpiPm.h"
#include "devices/BlockFile.h"
#include "devices/FilePort.h"
#include "devices/PvPanic.h"
#include "devices/SocketPort.h"
#include "devices/VirtioBalloon.h"
#include "devices/VirtioBlock.h"
#include "devices/VirtioConsole.h"
#include "devices/VirtioFs.h"
#include "devices/VirtioNet.h"
#include "devices/VirtioRng.h"
#include "devices/VirtioVsock.h"
#include "kvm/Log.h"
#include "kvm/UnixSocket.h"
#include "pci/Msix.h"
#include "virtio/VirtioPciTransport.h"
#include "vmm/Acpi.h"
#include "vmm/BootCpu.h"
#include "vmm/BzImage.h"
#include "vmm/Cpuid.h"
#include "vmm/ElfLoader.h"
#include "vmm/PvhBoot.h"

namespace ember::vmm {

using namespace layout;

namespace {
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint32_t kCom1Irq = 4;
constexpr uint64_t kMaxKernelSize = 512 * MiB;
}  // namespace

Result<std::unique_ptr<Machine>> Machine::create(const MachineConfig& config) {
  // SIGINT, SIGTERM and SIGHUP are read from a signalfd by the event loop. They are blocked here,
  // before any thread exists, so that every thread inherits the mask and none of them can be
  // picked by the kernel to run the default (terminating) action.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  const auto started = std::chrono::steady_clock::now();
  std::optional<StateFile> state;
  // Decided before the machine is allocated: an error returns with nothing to free.
  MachineConfig effective = config.restore ? EMBER_TRY(restoredConfig(config, state)) : config;
  std::unique_ptr<Machine> m(new Machine(effective));  // private constructor
  const MachineConfig& c = m->config_;
  m->kvm_.emplace(EMBER_TRY(kvm::KvmSystem::open(c.kvm_device)));
  if (c.cpus > static_cast<uint32_t>(m->kvm_->maxVcpus())) {
    return makeError(Errc::InvalidArgument, "--cpus {} is more than this host's KVM allows ({})",
                     c.cpus, m->kvm_->maxVcpus());
  }
  m->vm_ = EMBER_TRY(kvm::Vm::create(*m->kvm_));
  EMBER_TRY(m->vm_->setUpIrqchip(kTssAddress, kIdentityMapAddress));
  EMBER_TRY(m->setUpMemory(state ? &*state : nullptr));
  if (!state) EMBER_TRY(m->loadKernel());
  m->loop_ = EMBER_TRY(EventLoop::create());
  // --poll-us: adaptive by default (PollWindow); set before the loop thread starts.
  m->loop_->setPollWindow(c.poll_us ? PollWindow::fixed(uint64_t{*c.poll_us} * 1000)
                                    : PollWindow::adaptive(PollWindow::kDefaultMaxNs));
  EMBER_TRY(m->setUpLegacyDevices());
  EMBER_TRY(m->setUpPci());
  EMBER_TRY(m->setUpVcpus(/*boot=*/!state));
  EMBER_TRY(m->setUpSignals());
  if (state) EMBER_TRY(m->restoreState(*state, started));
  return m;
}

Machine::~Machine() {
  for (auto& v : vcpus_) {
    v->stop();
  }
  if (loop_) {
    loop_->stop();
  }
}

Result<void> Machine::setUpMemory(const StateFile* state) {
  auto layout = MemoryLayout::forSize(config_.memory);
  if (!layout) {
    return makeError(Errc::InvalidArgument, "--memory: {}", layout.error().message);
  }
  layout_.emplace(std::move(*layout));
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0 &&
      config_.memory > static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)) {
    return makeError(Errc::InvalidArgument, "--memory {} MiB is more than this host's RAM ({} MiB)",
                     config_.memory / MiB,
                     static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) / MiB);
  }
  if (state != nullptr) {
    memory_ = EMBER_TRY(restoredMemory(*state, layout_->ramRegions()));
  } else {
    // A vhost-user backend maps guest RAM too: then it lives in a memfd mapped shared.
    memory_ = EMBER_TRY(GuestMemory::create(
        layout_->ramRegions(),
        config_.filesystems.empty() ? MemoryBacking::Private : MemoryBacking::SharedMemfd));
  }
  uint32_t slot = 0;
  for (const auto& r : memory_.regions()) {
    EMBER_TRY(vm_->setMemorySlot(slot++, r.start.raw, r.size, r.mapping.data()));
  }
  log::debug("guest RAM: {} MiB in {} region(s)", config_.memory / MiB, memory_.regions().size());
  return {};
}

Result<void> Machine::loadKernel() {
  auto kernel = EMBER_TRY(readImageFile(config_.kernel, kMaxKernelSize, "kernel"));
  // ACPI first: both boot protocols carry the RSDP address to the guest.
  uint64_t rsdp = EMBER_TRY(writeAcpiTables(memory_, AcpiConfig{config_.cpus, 0, 0}));
  std::vector<uint8_t> initrd;
  if (!config_.initrd_image.empty()) {
    initrd = config_.initrd_image;
  } else if (!config_.initrd.empty()) {
    initrd = EMBER_TRY(readImageFile(config_.initrd, layout_->lowRamEnd(), "initrd"));
  }

  if (looksLikeBzImage(kernel)) {
    auto image = parseBzImage(kernel);
    if (!image) {
      return makeError(Errc::Format, "kernel {}: {}", config_.kernel, image.error().message);
    }
    auto loaded = loadBzImage(*image, kernel, memory_, *layout_, {config_.cmdline, initrd, rsdp});
    if (!loaded) {
      return makeError(loaded.error().code, "kernel {}: {}", config_.kernel,
                       loaded.error().message);
    }
    entry_ = loaded->entry64;
    entry_pvh_ = false;
    start_info_ = loaded->boot_params;  // %rsi at the 64-bit entry (boot protocol)
    log::debug("kernel: bzImage protocol {:#x} at {:#x}, 64-bit entry {:#x}",
               static_cast<unsigned>(image->header.version), loaded->load_address, entry_);
    return {};
  }
  if (!looksLikeElf(kernel)) {
    return makeError(Errc::Format, "kernel {} is neither a bzImage nor an ELF image",
                     config_.kernel);
  }
  auto image = parseElf(kernel);
  if (!image) {
    return makeError(Errc::Format, "kernel {}: {}", config_.kernel, image.error().message);
  }
  EMBER_TRY(loadElf(*image, kernel, memory_, kHighMemoryStart));

  std::vector<BootModule> modules;
  if (!initrd.empty()) {
    uint64_t addr = EMBER_TRY(placeHighModule(memory_, *layout_, initrd,
                                              (image->highest + 0xfff) & ~0xfffULL, UINT64_MAX));
    modules.push_back({addr, initrd.size()});
    log::debug("initrd: {} bytes at {:#x}", initrd.size(), addr);
  }
  start_info_ = EMBER_TRY(writePvhStartInfo(memory_, *layout_, config_.cmdline, modules, rsdp));
  if (image->pvh_entry) {
    entry_ = *image->pvh_entry;
    entry_pvh_ = true;
    log::debug("kernel: PVH entry {:#x}", entry_);
  } else {
    entry_ = image->entry;
    entry_pvh_ = false;
    log::debug("kernel: 64-bit ELF entry {:#x}", entry_);
  }
  return {};
}

Result<void> Machine::setUpLegacyDevices() {
  consoles_ = EMBER_TRY(HostConsoles::create(config_));
  com1_irq_ = std::make_unique<kvm::KvmIrqLine>(*vm_, kCom1Irq);
  auto* consoles = consoles_.get();
  com1_ = std::make_shared<devices::Uart8250>(
      *com1_irq_, [consoles](std::span<const uint8_t> b) { consoles->serialOutput(b); });
  EMBER_TRY(pio_.insert(kCom1Port, 8, com1_));
  kbd_irq_ = std::make_unique<kvm::KvmIrqLine>(*vm_, devices::I8042::kIrq);
  i8042_ = std::make_shared<devices::I8042>(exit_, kbd_irq_.get());
  EMBER_TRY(pio_.insert(devices::I8042::kBase, devices::I8042::kSize, i8042_));
  // The CMOS RTC (MC146818): the guest's wall clock at boot and /dev/rtc0. Without it, every
  // access to ports 0x70/0x71 is an exit to an unclaimed port that reads 0xff.
  rtc_irq_ = std::make_unique<kvm::KvmIrqLine>(*vm_, devices::CmosRtc::kIrq);
  cmos_ = std::make_shared<devices::CmosRtc>(*rtc_irq_);
  EMBER_TRY(pio_.insert(devices::CmosRtc::kBase, devices::CmosRtc::kSize, cmos_));
  EMBER_TRY(pio_.insert(devices::DebugExit::kPort, devices::DebugExit::kSize,
                        std::make_shared<devices::DebugExit>(exit_)));
  // ACPI hardware-reduced power management: S5 power-off and the reset register.
  acpi_pm_ = std::make_shared<devices::AcpiPm>(exit_);
  EMBER_TRY(pio_.insert(devices::AcpiPm::kBase, devices::AcpiPm::kSize, acpi_pm_));

  return {};
}

Result<void> Machine::setUpPci() {
  auto is_ram = [this](uint64_t addr, uint64_t len) {
    for (const auto& r : memory_.regions()) {
      if (addr < r.end() && r.start.raw < addr + len) return true;
    }
    return false;
  };
  pci_ = std::make_unique<pci::PciBus>(pio_, mmio_, is_ram);
  pci_->setResetHandler([this] {
    exit_.requestExit(devices::ExitRequest::reset("guest reset the machine (port 0xcf9)"));
  });
  EMBER_TRY(pio_.insert(0xcf8, 8, pci_->configPorts()));
  // ECAM for bus 0 only: 32 devices x 8 functions x 4 KiB.
  EMBER_TRY(mmio_.insert(kEcamStart, 1 * MiB, pci_->ecam()));

  for (const auto& d : config_.disks) {
    auto file = EMBER_TRY(devices::BlockFile::open(d.path, d.read_only));
    // num-queues: one request queue per vCPU unless asked otherwise (QEMU's default too).
    auto queues = d.num_queues != 0 ? d.num_queues
                                    : static_cast<uint16_t>(std::min<uint32_t>(
                                          config_.cpus, devices::VirtioBlock::kMaxQueues));
    log::debug("disk {}: {} bytes, {}{}, aio={}, {} request queue(s)", d.path, file.sizeBytes(),
               d.read_only ? "read-only, " : "",
               file.directFd() >= 0
                   ? fmt::format("O_DIRECT ({}-byte alignment)", file.directAlignment())
                   : std::string("buffered (no O_DIRECT here)"),
               devices::blockEngineName(d.aio), queues);
    auto blk = EMBER_TRY(
        devices::VirtioBlock::create(std::move(file), d.serial, loop_.get(), d.aio, queues));
    disks_.push_back(blk.get());
    EMBER_TRY(addVirtioDevice(std::move(blk), virtio::TransportOptions{d.ioeventfd, d.poll}));
  }
  if (auto ports = EMBER_TRY(consoles_->virtioPorts(*loop_))) {
    EMBER_TRY(addVirtioDevice(std::make_unique<devices::VirtioConsole>(std::move(*ports)), {}));
  }
  if (config_.rng) {
    EMBER_TRY(addVirtioDevice(std::make_unique<devices::VirtioRng>(), {}));
  }
  for (const auto& n : config_.nets) {
    auto tap = EMBER_TRY(devices::Tap::open(n.tap));
    std::array<uint8_t, 6> mac = n.guestMac();
    log::debug("net: tap {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", tap.name(), mac[0],
               mac[1], mac[2], mac[3], mac[4], mac[5]);
    std::unique_ptr<devices::VhostNet> vhost;
    if (n.vhost != VhostMode::Off) {
      std::string what =
          fmt::format("--net tap={},vhost={}", n.tap, n.vhost == VhostMode::On ? "on" : "auto");
      auto opened = devices::VhostNet::open(what);
      if (opened) {
        vhost = std::make_unique<devices::VhostNet>(std::move(*opened));
        log::info("net: tap {}: the kernel's vhost-net serves its queues", tap.name());
      } else if (n.vhost == VhostMode::On) {
        return opened.error();
      } else {
        log::info("{}; using ember's own virtio-net", opened.error().message);
      }
    }
    EMBER_TRY(addVirtioDevice(std::make_unique<devices::VirtioNet>(std::move(tap), mac, n.mtu,
                                                                   loop_.get(), std::move(vhost)),
                              virtio::TransportOptions{n.ioeventfd, n.poll}));
  }
  if (config_.vsock_cid) {
    EMBER_TRY(addVirtioDevice(EMBER_TRY(devices::VirtioVsock::create(*config_.vsock_cid)), {}));
    log::info("vsock: guest CID {} on the kernel's vhost-vsock", *config_.vsock_cid);
  }
  if (config_.balloon) {
    auto balloon =
        std::make_unique<devices::VirtioBalloon>(*config_.balloon, config_.balloon_deflate_on_oom);
    balloon_ = balloon.get();
    EMBER_TRY(addVirtioDevice(std::move(balloon), {}));
    balloon_stats_interval_s_ = config_.balloon_stats_interval_s;
    if (balloon_stats_interval_s_ != 0) EMBER_TRY(startBalloonStats());
  }
  for (const auto& fs : config_.filesystems) {
    EMBER_TRY(addFileSystem(fs));
  }
  if (config_.pvpanic) {
    uint8_t slot = EMBER_TRY(pci_->addDevice(std::make_shared<devices::PvPanic>(exit_)));
    log::debug("pci 00:{:02x}.0: pvpanic-pci", slot);
  }
  // Firmware's job on real hardware: give every BAR an address and turn decoding on. The guest
  // may move them later (Linux keeps them; the test guest relocates them).
  EMBER_TRY(pci_->assignResources(kPciIoStart, kPciIoSize, kPciMmio32Start, kPciMmio32Size));

  return consoles_->startInput(*loop_, *com1_, exit_);
}

Result<void> Machine::addFileSystem(const FsConfig& fs) {
  UniqueFd socket;
  std::string backend;
  devices::VirtiofsdProcess* child = nullptr;
  if (!fs.dir.empty()) {
    if (!config_.backend_log.empty() && !backend_log_.valid()) {
      backend_log_.reset(
          ::open(config_.backend_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (!backend_log_.valid()) {
        return Error::fromErrno(Errc::Io, fmt::format("{}: cannot open it for virtiofsd's messages",
                                                      config_.backend_log));
      }
    }
    virtiofsd_.push_back(EMBER_TRY(devices::VirtiofsdProcess::start(
        fs.dir, fs.readonly, backend_log_.valid() ? backend_log_.get() : -1, fs.option)));
    child = virtiofsd_.back().get();
    socket = child->takeSocket();
    backend = child->describe();
  } else {
    auto conn = connectUnixSocket(fs.socket);
    if (!conn) {
      return makeError(conn.error().code, "--fs socket={}: {}", fs.socket, conn.error().message);
    }
    socket = std::move(*conn);
    backend = "the vhost-user backend at " + fs.socket;
  }
  auto dev = devices::VirtioFs::create(std::move(socket), fs.tag, backend, memory_, loop_.get());
  if (!dev) {
    // A virtiofsd that could not start (not root, a bad directory) has exited by now: say so.
    std::string why;
    for (int i = 0; child != nullptr && i < 50 && why.empty(); ++i) {
      if (auto status = child->exitStatus()) why = fmt::format(" ({} {})", backend, *status);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string what = !fs.option.empty() ? fs.option
                       : fs.dir.empty()   ? "--fs socket=" + fs.socket
                                          : "--fs " + fs.dir;
    return makeError(dev.error().code, "{}: {}{}", what, dev.error().message, why);
  }
  log::debug("virtio-fs {}: {}{}", fs.tag, backend, fs.readonly ? " (read-only)" : "");
  return addVirtioDevice(std::move(*dev), {});
}

Result<void> Machine::addVirtioDevice(std::unique_ptr<virtio::VirtioDevice> device,
                                      const virtio::TransportOptions& options) {
  uint16_t vectors = static_cast<uint16_t>(device->queueCount() + 1);
  virtio::TransportEnvironment env{vm_.get(), loop_.get(), &memory_};
  auto transport = std::make_shared<virtio::VirtioPciTransport>(
      std::move(device), env, std::make_unique<pci::KvmMsiSink>(*vm_, vectors), options);
  auto* raw = transport.get();
  uint16_t type = raw->device().deviceType();
  size_t same_type =
      std::count_if(virtio_slots_.begin(), virtio_slots_.end(),
                    [type](const auto& s) { return s.transport->device().deviceType() == type; });
  uint8_t slot = EMBER_TRY(pci_->addDevice(transport));
  virtio_slots_.push_back(VirtioSlot{fmt::format("{}{}", virtio::deviceIdPrefix(type), same_type),
                                     fmt::format("00:{:02x}.0", slot), raw});
  // INTx routing, matching the ACPI _PRT: slot s, pin INTA -> IOAPIC GSI 16 + s % 8.
  uint32_t gsi = 16 + (slot % 8);
  raw->setIntxLine(std::make_unique<kvm::KvmIrqLine>(*vm_, gsi));
  raw->setInterruptLine(static_cast<uint8_t>(gsi));
  log::debug("pci 00:{:02x}.0: {} (ioeventfd {}, poll {})", slot, raw->name(),
             options.ioeventfd ? "on" : "off", options.ioeventfd && options.poll ? "on" : "off");
  return {};
}

Result<void> Machine::setUpVcpus(bool boot) {
  VcpuThread::installKickSignal();
  for (uint32_t id = 0; id < config_.cpus; ++id) {
    auto vcpu = EMBER_TRY(kvm::Vcpu::create(*vm_, id));
    bool tsc_deadline = kvm_->checkExtension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    EMBER_TRY(vcpu->setCpuid(buildCpuid(kvm_->supportedCpuid(), id, config_.cpus, tsc_deadline)));
    if (id == 0 && boot) {
      if (entry_pvh_) {
        EMBER_TRY(setPvhEntryState(*vcpu, static_cast<uint32_t>(entry_),
                                   static_cast<uint32_t>(start_info_)));
      } else {
        EMBER_TRY(setLongModeEntryState(*vcpu, memory_, entry_, start_info_));
      }
    }
    // Application processors wait in KVM for the guest's INIT/SIPI (in-kernel LAPIC).
    vcpus_.push_back(std::make_unique<VcpuThread>(std::move(vcpu), pio_, mmio_, exit_));
  }
  return {};
}

Result<void> Machine::setUpSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  // Already blocked in every thread (see create()).
  int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    return Error::fromErrno(Errc::Io, "signalfd");
  }
  signal_fd_.reset(fd);
  // A control fd: a signal ends a paused VM too.
  signal_reg_ = EMBER_TRY(loop_->addControl(fd, EPOLLIN, [this](uint32_t) {
    signalfd_siginfo info{};
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
      exit_.requestExit(devices::ExitRequest::fromSignal(static_cast<int>(info.ssi_signo)));
    }
  }));
  return {};
}

std::vector<DeviceRecord> Machine::deviceRecords() const {
  std::vector<DeviceRecord> out;
  for (const auto& s : virtio_slots_) {
    const virtio::VirtioDevice& d = s.transport->device();
    out.push_back(DeviceRecord{s.id, s.pci, virtio::deviceTypeName(d.deviceType()), d.name(),
                               s.transport->ioeventfd(), s.transport->counters(), d.counters()});
  }
  return out;
}

Result<void> Machine::startTimeout() {
  // A timerfd on the loop: the deadline is the run time, measured from the vCPUs' start.
  timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer_fd_.valid()) {
    return Error::fromErrno(Errc::Io, "timerfd_create");
  }
  double seconds = *config_.timeout;
  itimerspec when{};
  when.it_value.tv_sec = static_cast<time_t>(seconds);
  when.it_value.tv_nsec =
      static_cast<long>((seconds - static_cast<double>(when.it_value.tv_sec)) * 1e9);
  if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
  if (::timerfd_settime(timer_fd_.get(), 0, &when, nullptr) != 0) {
    return Error::fromErrno(Errc::Io, "timerfd_settime");
  }
  timer_reg_ = EMBER_TRY(loop_->addControl(timer_fd_.get(), EPOLLIN, [this, seconds](uint32_t) {
    exit_.requestExit(devices::ExitRequest::timeout(seconds));
  }));
  return {};
}

Result<void> Machine::pause() {
  std::unique_lock lock(pause_mutex_);
  pause_cv_.wait(lock, [this] { return running_ || stopping_; });
  if (stopping_) return makeError(Errc::Busy, "the VM is stopping");
  if (paused_) return okResult();
  // The vCPUs first, so that no new request is made; then the loop, so that none is served.
  for (auto& v : vcpus_) v->pause();
  loop_->pause();
  paused_ = true;
  // Every write the guest has been told is complete reaches the disk before the pause answers.
  for (const auto* disk : disks_) {
    if (auto r = disk->file().sync(); !r) {
      log::error("pause: {}: {}", disk->file().path(), r.error().message);
      return makeError(Errc::Io, "paused, but {} could not be synced: {}", disk->file().path(),
                       r.error().message);
    }
  }
  log::info("paused: the vCPUs are out of KVM_RUN and no queue is served");
  return okResult();
}

Result<void> Machine::resume() {
  std::unique_lock lock(pause_mutex_);
  pause_cv_.wait(lock, [this] { return running_ || stopping_; });
  if (stopping_) return makeError(Errc::Busy, "the VM is stopping");
  if (!paused_) return okResult();
  loop_->resume();
  for (auto& v : vcpus_) v->resume();
  paused_ = false;
  log::info("resumed");
  return okResult();
}

Result<void> Machine::waitRunning(std::unique_lock<std::mutex>& lock) {
  pause_cv_.wait(lock, [this] { return running_ || stopping_; });
  // While the caller holds the lock, run() cannot start tearing the devices down.
  if (stopping_) return makeError(Errc::Busy, "the VM is stopping");
  return okResult();
}

Result<void> Machine::waitBalloon(std::unique_lock<std::mutex>& lock) {
  EMBER_TRY(waitRunning(lock));
  if (balloon_ == nullptr) return makeError(Errc::NotFound, "there is no balloon device");
  return okResult();
}

Result<RunRecord> Machine::liveRecord() {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitRunning(lock));
  RunRecord record;
  record.run_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  for (const auto& v : vcpus_) {
    record.vcpus.push_back(VcpuRecord{v->vcpu().id(), v->exitCounts(), {}});
  }
  record.devices = deviceRecords();
  record.loop_polled = loop_->counters().polled;
  record.loop_slept = loop_->counters().slept;
  return record;
}

Result<void> Machine::setIoeventfd(std::string_view device_id, bool on) {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitRunning(lock));
  if (paused_) return makeError(Errc::Busy, "the VM is paused; resume it first");
  for (const auto& s : virtio_slots_) {
    if (s.id == device_id) return s.transport->setIoeventfd(on);
  }
  std::string ids;
  for (const auto& s : virtio_slots_) ids += (ids.empty() ? "" : ", ") + s.id;
  return makeError(Errc::NotFound, "no device '{}' (the devices are: {})", device_id,
                   ids.empty() ? "none" : ids);
}

Result<void> Machine::replaceDiskMedium(size_t index, const std::string& path) {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitRunning(lock));
  if (paused_) return makeError(Errc::Busy, "the VM is paused; resume it first");
  if (index >= disks_.size()) {
    return makeError(Errc::NotFound, "no disk {} (the VM has {})", index, disks_.size());
  }
  devices::VirtioBlock* disk = disks_[index];
  auto file = EMBER_TRY(devices::BlockFile::open(path, disk->file().readOnly()));
  EMBER_TRY(disk->replaceMedium(std::move(file)));
  return okResult();
}

Result<void> Machine::armBalloonStats(uint32_t seconds) {
  itimerspec every{};
  every.it_value.tv_sec = every.it_interval.tv_sec = seconds;
  if (::timerfd_settime(balloon_timer_fd_.get(), 0, &every, nullptr) != 0) {
    return Error::fromErrno(Errc::Io, "timerfd_settime (balloon statistics)");
  }
  return okResult();
}

Result<void> Machine::startBalloonStats() {
  // 5.5.6.3: the device asks for fresh statistics by returning the buffer the driver posted.
  balloon_timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!balloon_timer_fd_.valid()) {
    return Error::fromErrno(Errc::Io, "timerfd_create (balloon statistics)");
  }
  EMBER_TRY(armBalloonStats(balloon_stats_interval_s_));
  balloon_timer_reg_ = EMBER_TRY(loop_->add(balloon_timer_fd_.get(), EPOLLIN, [this](uint32_t) {
    uint64_t expirations = 0;
    if (::read(balloon_timer_fd_.get(), &expirations, sizeof expirations) > 0) {
      balloon_->requestStats();
    }
  }));
  return okResult();
}

Result<void> Machine::sendCtrlAltDel() {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitRunning(lock));
  EMBER_TRY(i8042_->sendCtrlAltDel());
  log::info("sent Ctrl-Alt-Del to the guest's keyboard");
  return okResult();
}

Result<Machine::BalloonState> Machine::balloonState() {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitBalloon(lock));
  return BalloonState{balloon_->targetPages(), balloon_->actualPages(), balloon_->deflateOnOom(),
                      balloon_stats_interval_s_, balloon_->stats().guest_stats};
}

Result<void> Machine::setBalloonTarget(uint64_t bytes) {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitBalloon(lock));
  if (bytes >= config_.memory) {
    return makeError(Errc::InvalidArgument, "the target ({} MiB) must be below the memory ({} MiB)",
                     bytes / MiB, config_.memory / MiB);
  }
  balloon_->setTargetBytes(bytes);
  log::info("balloon: target {} MiB", bytes / MiB);
  return okResult();
}

Result<void> Machine::setBalloonStatsInterval(uint32_t seconds) {
  std::unique_lock lock(pause_mutex_);
  EMBER_TRY(waitBalloon(lock));
  if (balloon_stats_interval_s_ == 0) {
    return makeError(Errc::Unsupported,
                     "statistics were not enabled at boot (stats_polling_interval_s 0)");
  }
  if (seconds == 0) {
    return makeError(Errc::InvalidArgument,
                     "statistics enabled at boot cannot be turned off (0); give an interval");
  }
  EMBER_TRY(armBalloonStats(seconds));
  balloon_stats_interval_s_ = seconds;
  return okResult();
}

RunRecord Machine::run() {
  if (config_.timeout) {
    if (auto r = startTimeout(); !r) {
      RunRecord record;
      record.exit = devices::ExitRequest::startupError(r.error().message);
      {
        std::lock_guard lock(pause_mutex_);
        stopping_ = true;  // a pause() waiting for the start gives up
      }
      pause_cv_.notify_all();
      return record;
    }
  }
  {
    // Under pause_mutex_: a pause() from the API thread waits until every thread has started
    // (and sees the threads started).
    std::lock_guard lock(pause_mutex_);
    started_ = std::chrono::steady_clock::now();
    if (start_paused_) {
      // A restore without resume: paused before anything runs (pause() waits for nothing
      // that has not started).
      for (auto& v : vcpus_) v->pause();
      loop_->pause();
      paused_ = true;
    }
    loop_->start();
    for (auto& v : vcpus_) {
      v->start();
    }
    running_ = true;
  }
  pause_cv_.notify_all();
  if (config_.restore) {
    log::info("restored {} with {} vCPU(s) and {} MiB from {}{}", config_.kernel, config_.cpus,
              config_.memory / MiB, config_.restore->state_path,
              start_paused_ ? "; paused until PATCH /vm Resumed" : "");
  } else {
    log::info("booting {} with {} vCPU(s) and {} MiB", config_.kernel, config_.cpus,
              config_.memory / MiB);
  }
  RunRecord record;
  record.exit = exit_.wait();
  {
    std::lock_guard lock(pause_mutex_);  // a pause in progress finishes first
    stopping_ = true;
  }
  pause_cv_.notify_all();
  record.run_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  for (auto& v : vcpus_) {
    v->stop();
  }
  loop_->stop();
  // Counted now that nothing runs any more: no vCPU exits and no loop work after this.
  for (const auto& v : vcpus_) {
    record.vcpus.push_back(VcpuRecord{v->vcpu().id(), v->exitCounts(), v->exitSites()});
  }
  record.devices = deviceRecords();
  record.loop_polled = loop_->counters().polled;
  record.loop_slept = loop_->counters().slept;
  consoles_->stopInput();  // restores the terminal
  pci_.reset();            // devices finish in-flight I/O and sync their disks
  consoles_->flush();
  log::info("{}; exiting with status {}", record.exit.message, record.exit.status);
  return record;
}

}  // namespace ember::vmm
