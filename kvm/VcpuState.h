// Everything of one vCPU that a snapshot saves and a restore puts back (issue 13): the general
// and segment registers, the FPU/SSE/AVX state (KVM_GET_XSAVE) and XCR0, the MSRs KVM lists as
// worth saving (KVM_GET_MSR_INDEX_LIST, the TSC among them), the local APIC, the pending
// events (exceptions, interrupts, NMI, SMI), the debug registers and the run state
// (KVM_GET_MP_STATE: running, halted, waiting for INIT/SIPI).
//
// capture() runs on a vCPU that is out of KVM_RUN (paused). restore() sets the pieces in the
// order KVM needs: the registers, then the special registers (which hold the APIC base the
// LAPIC state is checked against), the MSRs, the LAPIC, the events, the debug registers, and
// the run state last. encode()/decode() give the section bytes of a state file; decode() reads
// untrusted bytes (StateReader bounds every field).
//
// XCR0 exists only where the host has XSAVE (KVM_CAP_XCRS): elsewhere (the emulated-SVM L1's
// qemu64 CPU) KVM offers the guest no XSAVE, KVM_GET_XSAVE gives the legacy FXSAVE region, and
// the state holds no XCRs (nr_xcrs 0), which restore() then does not set.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

#include "kvm/KvmAbi.h"
#include "kvm/Result.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::kvm {

class Vcpu;

struct VcpuState {
  // Far above the ~100 MSRs KVM lists: a bound for decoding a tampered file.
  static constexpr uint32_t kMaxMsrs = 1024;

  kvm_regs regs{};
  kvm_sregs sregs{};
  abi::Xsave xsave{};
  kvm_xcrs xcrs{};
  std::vector<kvm_msr_entry> msrs;
  kvm_lapic_state lapic{};
  kvm_vcpu_events events{};
  kvm_debugregs debugregs{};
  kvm_mp_state mp_state{};

  // MSR_INDICES: the MSRs to save (KvmSystem::msrIndexList). One this vCPU cannot read is left
  // out (KVM lists some that only some CPUs have). WITH_XCRS: the host's KVM has KVM_CAP_XCRS.
  static Result<VcpuState> capture(const Vcpu& vcpu, std::span<const uint32_t> msr_indices,
                                   bool with_xcrs);
  Result<void> restore(Vcpu& vcpu) const;

  void encode(StateWriter& w) const;
  // Reads what encode() wrote; errors are the reader's (r.finish()).
  static VcpuState decode(StateReader& r);
};

}  // namespace ember::kvm
