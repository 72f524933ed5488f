// One KVM vCPU: its fd, its kvm_run mapping, register access and a typed run() exit.
//
// A Vcpu is used by exactly one thread (its runner) except for requestExit(), which another
// thread may call to make a running KVM_RUN return promptly (immediate_exit + a signal).
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kvm/MemoryMapping.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "kvm/Vm.h"

namespace ember::kvm {

namespace exit {
// Port I/O. `data` holds size*count bytes (count > 1 for string instructions).
struct IoIn {
  uint16_t port;
  uint8_t size;
  uint32_t count;
  std::span<uint8_t> data;
};
struct IoOut {
  uint16_t port;
  uint8_t size;
  uint32_t count;
  std::span<const uint8_t> data;
};
struct MmioRead {
  uint64_t addr;
  std::span<uint8_t> data;
};
struct MmioWrite {
  uint64_t addr;
  std::span<const uint8_t> data;
};
struct Hlt {};
struct Shutdown {};  // triple fault
struct InternalError {
  uint32_t suberror;
  std::vector<uint64_t> data;
};
struct FailEntry {
  uint64_t reason;
};
struct SystemEvent {
  uint32_t type;  // KVM_SYSTEM_EVENT_*
};
struct Interrupted {};  // KVM_RUN returned EINTR or immediate_exit was set
struct Unhandled {
  uint32_t reason;
};
}  // namespace exit

using VcpuExit = std::variant<exit::IoIn, exit::IoOut, exit::MmioRead, exit::MmioWrite, exit::Hlt,
                              exit::Shutdown, exit::InternalError, exit::FailEntry,
                              exit::SystemEvent, exit::Interrupted, exit::Unhandled>;

const char* exitReasonName(uint32_t reason);

// The kinds of VcpuExit, by variant index, as the run record names them ("io_in", "mmio_write",
// "hlt", ...).
constexpr size_t kVcpuExitKinds = std::variant_size_v<VcpuExit>;
const char* exitKindName(size_t kind);

class Vcpu {
 public:
  static Result<std::unique_ptr<Vcpu>> create(Vm& vm, uint32_t id);

  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }

  Result<VcpuExit> run();

  // Safe from any thread: makes the current or next KVM_RUN return with exit::Interrupted.
  // `thread_kick` is invoked to interrupt a KVM_RUN already in progress (it signals the thread).
  void setImmediateExit(bool on);

  Result<void> setCpuid(const std::vector<kvm_cpuid_entry2>& entries);
  Result<kvm_regs> getRegs() const;
  Result<void> setRegs(const kvm_regs& regs);
  Result<kvm_sregs> getSregs() const;
  Result<void> setSregs(const kvm_sregs& sregs);
  Result<void> setMsrs(const std::vector<kvm_msr_entry>& msrs);
  Result<void> setFpu(const kvm_fpu& fpu);
  Result<void> setLapic(const kvm_lapic_state& lapic);
  Result<kvm_lapic_state> getLapic() const;
  Result<kvm_mp_state> getMpState() const;

  // A multi-line register dump for crash reports.
  std::string describeState() const;

 private:
  Vcpu() = default;
  uint32_t id_ = 0;
  UniqueFd fd_;
  MemoryMapping run_mapping_;
  kvm_run* run_ = nullptr;
};

}  // namespace ember::kvm
