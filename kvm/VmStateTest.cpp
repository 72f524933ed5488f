// VmState against real KVM: the IOAPIC, the PICs, the PIT and kvmclock of one VM, changed from
// their reset values, captured, encoded, decoded and restored into another VM read back the
// same, and its clock goes on from the saved value; a tampered chip id is refused.
#include <gtest/gtest.h>
#include <sys/ioctl.h>

#include <cstring>

#include "kvm/KvmSystem.h"
#include "kvm/Vm.h"
#include "kvm/VmState.h"

namespace ember::kvm {
namespace {

std::unique_ptr<Vm> makeVm(const KvmSystem& kvm) {
  auto vm = Vm::create(kvm);
  EXPECT_TRUE(vm) << vm.error().message;
  if (!vm) return nullptr;
  EXPECT_TRUE((*vm)->setUpIrqchip(0xfffbd000, 0xfffbc000));
  return std::move(*vm);
}

TEST(VmState, CapturedStateRestoresIntoAnotherVm) {
  auto kvm = KvmSystem::open("/dev/kvm");
  if (!kvm) GTEST_SKIP() << kvm.error().message;
  auto a = makeVm(*kvm);
  ASSERT_TRUE(a);
  // An IOAPIC redirection entry and the PIC's mask register, as a guest would have set them.
  kvm_irqchip ioapic{};
  ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  ASSERT_EQ(::ioctl(a->fd(), KVM_GET_IRQCHIP, &ioapic), 0);
  ioapic.chip.ioapic.redirtbl[5].bits = 0x0000000000010035ull;  // vector 0x35, masked
  ASSERT_EQ(::ioctl(a->fd(), KVM_SET_IRQCHIP, &ioapic), 0);
  kvm_irqchip pic{};
  pic.chip_id = KVM_IRQCHIP_PIC_MASTER;
  ASSERT_EQ(::ioctl(a->fd(), KVM_GET_IRQCHIP, &pic), 0);
  pic.chip.pic.imr = 0xfb;
  ASSERT_EQ(::ioctl(a->fd(), KVM_SET_IRQCHIP, &pic), 0);
  kvm_clock_data later{};
  later.clock = 5'000'000'000ull;  // the guest's clock at 5 s
  ASSERT_EQ(::ioctl(a->fd(), KVM_SET_CLOCK, &later), 0);

  auto saved = VmState::capture(*a);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_GE(saved->clock.clock, 5'000'000'000ull);
  StateWriter w;
  saved->encode(w);
  auto bytes = w.take();
  StateReader r(bytes, "VM 0");
  VmState decoded = VmState::decode(r);
  ASSERT_TRUE(r.finish().ok()) << r.finish().error().message;

  auto b = makeVm(*kvm);
  ASSERT_TRUE(b);
  auto restored = decoded.restore(*b);
  ASSERT_TRUE(restored) << restored.error().message;
  auto again = VmState::capture(*b);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->ioapic.chip.ioapic.redirtbl[5].bits, 0x0000000000010035ull);
  EXPECT_EQ(again->pic_master.chip.pic.imr, 0xfb);
  EXPECT_EQ(std::memcmp(&again->pic_slave, &saved->pic_slave, sizeof saved->pic_slave), 0);
  EXPECT_EQ(again->pit.channels[0].mode, saved->pit.channels[0].mode);
  EXPECT_GE(again->clock.clock, saved->clock.clock) << "the clock does not go backwards";
  EXPECT_LT(again->clock.clock, saved->clock.clock + 1'000'000'000ull) << "nor jump ahead";
}

TEST(Hostile, VmStateDecodeRefusesAChipInTheWrongPlace) {
  VmState s;
  s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.ioapic.chip_id = KVM_IRQCHIP_PIC_MASTER;  // a second master where the IOAPIC belongs
  StateWriter w;
  s.encode(w);
  auto bytes = w.take();
  StateReader r(bytes, "VM 0");
  VmState::decode(r);
  EXPECT_NE(r.finish().error().message.find("chip_id 0 where 2 belongs"), std::string::npos)
      << r.finish().error().message;
  auto cut = std::span<const uint8_t>(bytes).first(bytes.size() - 1);
  StateReader c(cut, "VM 0");
  VmState::decode(c);
  EXPECT_NE(c.finish().error().message.find("truncated"), std::string::npos);
}

}  // namespace
}  // namespace ember::kvm
