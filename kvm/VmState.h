// The VM-wide state a snapshot saves besides the vCPUs' (issue 13): the in-kernel interrupt
// controllers (both 8259 PICs and the IOAPIC, KVM_GET_IRQCHIP), the PIT (KVM_GET_PIT2) and
// kvmclock (KVM_GET_CLOCK: the guest's clock in ns, so that it goes on from where it was at
// restore instead of jumping). Captured while every vCPU is out of KVM_RUN; restored into a VM
// whose irqchip is set up and before its vCPUs first run. The MSI routes are the MSI-X tables'
// to rebuild, not KVM's to save.
#pragma once

#include <linux/kvm.h>

#include "kvm/Result.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::kvm {

class Vm;

struct VmState {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};

  static Result<VmState> capture(const Vm& vm);
  Result<void> restore(Vm& vm) const;

  void encode(StateWriter& w) const;
  // Reads what encode() wrote (untrusted bytes); errors are the reader's.
  static VmState decode(StateReader& r);
};

}  // namespace ember::kvm
