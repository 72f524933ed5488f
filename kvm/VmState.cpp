// Capturing and restoring the VM-wide KVM state (see VmState.h).
#include "kvm/VmState.h"

#include <sys/ioctl.h>

#include "kvm/Vm.h"

namespace ember::kvm {

namespace {

Result<void> call(int fd, unsigned long request, const char* name, void* arg) {
  if (::ioctl(fd, request, arg) < 0) return Error::fromErrno(Errc::Kvm, name);
  return okResult();
}

}  // namespace

Result<VmState> VmState::capture(const Vm& vm) {
  VmState s;
  s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  for (kvm_irqchip* chip : {&s.pic_master, &s.pic_slave, &s.ioapic}) {
    EMBER_TRY(call(vm.fd(), KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", chip));
  }
  EMBER_TRY(call(vm.fd(), KVM_GET_PIT2, "KVM_GET_PIT2", &s.pit));
  EMBER_TRY(call(vm.fd(), KVM_GET_CLOCK, "KVM_GET_CLOCK", &s.clock));
  return s;
}

Result<void> VmState::restore(Vm& vm) const {
  for (const kvm_irqchip* chip : {&pic_master, &pic_slave, &ioapic}) {
    kvm_irqchip c = *chip;
    EMBER_TRY(call(vm.fd(), KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP", &c));
  }
  kvm_pit_state2 p = pit;
  EMBER_TRY(call(vm.fd(), KVM_SET_PIT2, "KVM_SET_PIT2", &p));
  // Only the clock value: the flags KVM_GET_CLOCK reported describe the old host's clock source
  // and realtime pairing, which KVM_SET_CLOCK must not be told of here.
  kvm_clock_data c{};
  c.clock = clock.clock;
  EMBER_TRY(call(vm.fd(), KVM_SET_CLOCK, "KVM_SET_CLOCK", &c));
  return okResult();
}

void VmState::encode(StateWriter& w) const {
  w.object(pic_master);
  w.object(pic_slave);
  w.object(ioapic);
  w.object(pit);
  w.object(clock);
}

VmState VmState::decode(StateReader& r) {
  VmState s;
  s.pic_master = r.object<kvm_irqchip>("pic_master");
  s.pic_slave = r.object<kvm_irqchip>("pic_slave");
  s.ioapic = r.object<kvm_irqchip>("ioapic");
  s.pit = r.object<kvm_pit_state2>("pit");
  s.clock = r.object<kvm_clock_data>("clock");
  // Each chip is the one its place says: KVM_SET_IRQCHIP takes the chip from the structure.
  const std::pair<const kvm_irqchip*, uint32_t> chips[] = {{&s.pic_master, KVM_IRQCHIP_PIC_MASTER},
                                                           {&s.pic_slave, KVM_IRQCHIP_PIC_SLAVE},
                                                           {&s.ioapic, KVM_IRQCHIP_IOAPIC}};
  for (const auto& [chip, id] : chips) {
    if (r.ok() && chip->chip_id != id) {
      r.fail("irqchip", fmt::format("chip_id {} where {} belongs", chip->chip_id, id));
    }
  }
  return s;
}

}  // namespace ember::kvm
