// vCPU ioctls and the translation of kvm_run exits into typed values.
#include "kvm/Vcpu.h"

#include <sys/ioctl.h>

#include "kvm/KvmAbi.h"

namespace ember::kvm {

Result<std::unique_ptr<Vcpu>> Vcpu::create(Vm& vm, uint32_t id) {
  std::unique_ptr<Vcpu> vcpu(new Vcpu());  // private constructor
  vcpu->id_ = id;
  int fd = ::ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) {
    return Error::fromErrno(Errc::Kvm, fmt::format("KVM_CREATE_VCPU {}", id));
  }
  vcpu->fd_.reset(fd);
  vcpu->run_mapping_ = EMBER_TRY(MemoryMapping::ofFd(
      fd, static_cast<size_t>(vm.system().vcpuMmapSize()), PROT_READ | PROT_WRITE));
  // The mapping starts with struct kvm_run (KVM ABI).
  vcpu->run_ = reinterpret_cast<kvm_run*>(vcpu->run_mapping_.data());
  return vcpu;
}

void Vcpu::setImmediateExit(bool on) {
  std::atomic_ref<uint8_t>(run_->immediate_exit).store(on ? 1 : 0, std::memory_order_seq_cst);
}

Result<VcpuExit> Vcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    if (errno == EINTR || errno == EAGAIN) {
      return VcpuExit(exit::Interrupted{});
    }
    return Error::fromErrno(Errc::Kvm, fmt::format("KVM_RUN on vCPU {}", id_));
  }
  // kvm_run is followed by the I/O data area; io.data_offset is relative to its start.
  uint8_t* base = run_mapping_.data();
  switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
      size_t bytes = static_cast<size_t>(run_->io.size) * run_->io.count;
      if (run_->io.data_offset + bytes > run_mapping_.size()) {
        return makeError(Errc::Kvm, "KVM I/O exit data outside the kvm_run mapping");
      }
      uint8_t* data = base + run_->io.data_offset;
      if (run_->io.direction == KVM_EXIT_IO_IN) {
        return VcpuExit(exit::IoIn{run_->io.port, run_->io.size, run_->io.count,
                                   std::span<uint8_t>(data, bytes)});
      }
      return VcpuExit(exit::IoOut{run_->io.port, run_->io.size, run_->io.count,
                                  std::span<const uint8_t>(data, bytes)});
    }
    case KVM_EXIT_MMIO: {
      uint32_t len = std::min<uint32_t>(run_->mmio.len, sizeof run_->mmio.data);
      if (run_->mmio.is_write) {
        return VcpuExit(
            exit::MmioWrite{run_->mmio.phys_addr, std::span<const uint8_t>(run_->mmio.data, len)});
      }
      return VcpuExit(
          exit::MmioRead{run_->mmio.phys_addr, std::span<uint8_t>(run_->mmio.data, len)});
    }
    case KVM_EXIT_HLT:
      return VcpuExit(exit::Hlt{});
    case KVM_EXIT_SHUTDOWN:
      return VcpuExit(exit::Shutdown{});
    case KVM_EXIT_INTERNAL_ERROR: {
      exit::InternalError e{run_->internal.suberror, {}};
      uint32_t n = std::min<uint32_t>(run_->internal.ndata, 16);
      e.data.assign(run_->internal.data, run_->internal.data + n);
      return VcpuExit(std::move(e));
    }
    case KVM_EXIT_FAIL_ENTRY:
      return VcpuExit(exit::FailEntry{run_->fail_entry.hardware_entry_failure_reason});
    case KVM_EXIT_SYSTEM_EVENT:
      return VcpuExit(exit::SystemEvent{run_->system_event.type});
    case KVM_EXIT_INTR:
      return VcpuExit(exit::Interrupted{});
    default:
      return VcpuExit(exit::Unhandled{run_->exit_reason});
  }
}

Result<void> Vcpu::setCpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  abi::FlexBuffer<kvm_cpuid_entry2> buf{std::span<const kvm_cpuid_entry2>(entries)};
  if (::ioctl(fd_.get(), abi::kSetCpuid2, buf.data()) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_SET_CPUID2");
  }
  return {};
}

#define EMBER_VCPU_GET(type, ioctl_nr)             \
  type value{};                                    \
  if (::ioctl(fd_.get(), ioctl_nr, &value) < 0) {  \
    return Error::fromErrno(Errc::Kvm, #ioctl_nr); \
  }                                                \
  return value;

#define EMBER_VCPU_SET(ioctl_nr, ptr)              \
  if (::ioctl(fd_.get(), ioctl_nr, ptr) < 0) {     \
    return Error::fromErrno(Errc::Kvm, #ioctl_nr); \
  }                                                \
  return {};

Result<kvm_regs> Vcpu::getRegs() const {
    EMBER_VCPU_GET(kvm_regs, KVM_GET_REGS)} Result<void> Vcpu::setRegs(const kvm_regs& regs){
    EMBER_VCPU_SET(KVM_SET_REGS, &regs)} Result<kvm_sregs> Vcpu::getSregs() const {
    EMBER_VCPU_GET(kvm_sregs, KVM_GET_SREGS)} Result<void> Vcpu::setSregs(const kvm_sregs& sregs){
    EMBER_VCPU_SET(KVM_SET_SREGS, &sregs)} Result<void> Vcpu::setFpu(const kvm_fpu& fpu){
    EMBER_VCPU_SET(KVM_SET_FPU, &fpu)} Result<void> Vcpu::setLapic(const kvm_lapic_state& l){
    EMBER_VCPU_SET(KVM_SET_LAPIC, &l)} Result<kvm_lapic_state> Vcpu::getLapic() const {
    EMBER_VCPU_GET(kvm_lapic_state, KVM_GET_LAPIC)} Result<kvm_mp_state> Vcpu::getMpState() const {
    EMBER_VCPU_GET(kvm_mp_state, KVM_GET_MP_STATE)}

Result<void> Vcpu::setMsrs(const std::vector<kvm_msr_entry>& msrs) {
  abi::FlexBuffer<kvm_msr_entry> buf{std::span<const kvm_msr_entry>(msrs)};
  int n = ::ioctl(fd_.get(), abi::kSetMsrs, buf.data());
  if (n < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_SET_MSRS");
  }
  if (static_cast<size_t>(n) != msrs.size()) {
    return makeError(Errc::Kvm, "KVM_SET_MSRS: MSR {:#x} was refused", msrs[n].index);
  }
  return {};
}

std::string Vcpu::describeState() const {
  auto regs = getRegs();
  auto sregs = getSregs();
  if (!regs || !sregs) {
    return "(registers unavailable)";
  }
  const kvm_regs& r = *regs;
  const kvm_sregs& s = *sregs;
  return fmt::format(
      "rip={:#018x} rsp={:#018x} rflags={:#x}\n"
      "rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n"
      "rsi={:#018x} rdi={:#018x} rbp={:#018x}\n"
      "r8 ={:#018x} r9 ={:#018x} r10={:#018x} r11={:#018x}\n"
      "r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n"
      "cs={:#06x} base={:#x} l={} db={} dpl={}  ss={:#06x}\n"
      "cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x} apic_base={:#x}",
      r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10,
      r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.cs.dpl,
      s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.apic_base);
}

const char* exitKindName(size_t kind) {
  static constexpr const char* kNames[] = {
      "io_in",          "io_out",     "mmio_read",    "mmio_write",  "hlt",      "shutdown",
      "internal_error", "fail_entry", "system_event", "interrupted", "unhandled"};
  static_assert(std::size(kNames) == kVcpuExitKinds, "one name per VcpuExit alternative");
  return kind < kVcpuExitKinds ? kNames[kind] : "unknown";
}

const char* exitReasonName(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN:
      return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION:
      return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_IO:
      return "KVM_EXIT_IO";
    case KVM_EXIT_HYPERCALL:
      return "KVM_EXIT_HYPERCALL";
    case KVM_EXIT_DEBUG:
      return "KVM_EXIT_DEBUG";
    case KVM_EXIT_HLT:
      return "KVM_EXIT_HLT";
    case KVM_EXIT_MMIO:
      return "KVM_EXIT_MMIO";
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return "KVM_EXIT_IRQ_WINDOW_OPEN";
    case KVM_EXIT_SHUTDOWN:
      return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY:
      return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTR:
      return "KVM_EXIT_INTR";
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT:
      return "KVM_EXIT_SYSTEM_EVENT";
    default:
      return "unknown exit";
  }
}

}  // namespace ember::kvm
