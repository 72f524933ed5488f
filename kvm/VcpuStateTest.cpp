// VcpuState against real KVM: a vCPU's state, changed from its reset values, captured, encoded,
// decoded and restored into a vCPU of another VM reads back the same; a tampered encoding is an
// error naming the field.
#include <gtest/gtest.h>

#include <cstring>

#include "kvm/KvmSystem.h"
#include "kvm/Vcpu.h"
#include "kvm/VcpuState.h"
#include "kvm/Vm.h"

namespace ember::kvm {
namespace {

constexpr uint32_t kMsrTsc = 0x10, kMsrSysenterCs = 0x174, kMsrStar = 0xc0000081;

struct Rig {
  std::unique_ptr<Vm> vm;
  std::unique_ptr<Vcpu> vcpu;
};

std::optional<Rig> makeRig(const KvmSystem& kvm) {
  auto vm = Vm::create(kvm);
  EXPECT_TRUE(vm) << vm.error().message;
  if (!vm) return std::nullopt;
  EXPECT_TRUE((*vm)->setUpIrqchip(0xfffbd000, 0xfffbc000));
  auto vcpu = Vcpu::create(**vm, 0);
  EXPECT_TRUE(vcpu) << vcpu.error().message;
  if (!vcpu) return std::nullopt;
  return Rig{std::move(*vm), std::move(*vcpu)};
}

// STATE through a state file's bytes (encode, decode) and into a vCPU of another VM: that vCPU,
// or the failure (the decoder's or KVM's).
Result<std::optional<Rig>> restoredElsewhere(const KvmSystem& kvm, const VcpuState& state) {
  StateWriter w;
  state.encode(w);
  auto bytes = w.take();
  StateReader r(bytes, "VCPU 0");
  VcpuState decoded = VcpuState::decode(r);
  EMBER_TRY(r.finish());
  auto b = makeRig(kvm);
  if (!b) return makeError(Errc::Kvm, "no second VM");
  EMBER_TRY(decoded.restore(*b->vcpu));
  return b;
}

const kvm_msr_entry* findMsr(const VcpuState& s, uint32_t index) {
  for (const auto& m : s.msrs) {
    if (m.index == index) return &m;
  }
  return nullptr;
}

TEST(VcpuState, CapturedStateRestoresIntoAnotherVm) {
  auto kvm = KvmSystem::open("/dev/kvm");
  if (!kvm) GTEST_SKIP() << kvm.error().message;
  auto msrs = kvm->msrIndexList();
  ASSERT_TRUE(msrs) << msrs.error().message;
  EXPECT_GT(msrs->size(), 10u);
  auto a = makeRig(*kvm);
  ASSERT_TRUE(a);
  kvm_regs regs = *a->vcpu->getRegs();
  regs.rax = 0x1122334455667788;
  regs.rip = 0x7000;
  regs.rflags = 0x202;
  ASSERT_TRUE(a->vcpu->setRegs(regs));
  kvm_sregs sregs = *a->vcpu->getSregs();
  sregs.cs.base = 0x10000;
  sregs.cs.selector = 0x1000;
  ASSERT_TRUE(a->vcpu->setSregs(sregs));
  ASSERT_TRUE(a->vcpu->setMsrs({{kMsrSysenterCs, 0, 0x10}, {kMsrStar, 0, 0x0023001000000000}}));

  auto saved = VcpuState::capture(*a->vcpu, *msrs, kvm->checkExtension(KVM_CAP_XCRS) > 0);
  ASSERT_TRUE(saved) << saved.error().message;
  ASSERT_NE(findMsr(*saved, kMsrStar), nullptr);
  EXPECT_NE(findMsr(*saved, kMsrTsc), nullptr) << "the TSC is saved";
  auto restored = restoredElsewhere(*kvm, *saved);
  ASSERT_TRUE(restored) << restored.error().message;
  auto& b = *restored;
  auto again = VcpuState::capture(*b->vcpu, *msrs, kvm->checkExtension(KVM_CAP_XCRS) > 0);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->regs.rax, regs.rax);
  EXPECT_EQ(again->regs.rip, 0x7000u);
  EXPECT_EQ(again->sregs.cs.base, 0x10000u);
  EXPECT_EQ(again->sregs.cs.selector, 0x1000u);
  EXPECT_EQ(std::memcmp(&again->xsave, &saved->xsave, sizeof saved->xsave), 0);
  EXPECT_EQ(std::memcmp(&again->lapic, &saved->lapic, sizeof saved->lapic), 0);
  EXPECT_EQ(again->mp_state.mp_state, saved->mp_state.mp_state);
  for (const auto& m : saved->msrs) {
    const kvm_msr_entry* back = findMsr(*again, m.index);
    ASSERT_NE(back, nullptr) << std::hex << m.index;
    if (m.index != kMsrTsc) {
      EXPECT_EQ(back->data, m.data) << "MSR " << std::hex << m.index;
    }
  }
  // The TSC goes on from where it was saved, not from the new VM's zero-ish start.
  EXPECT_GE(findMsr(*again, kMsrTsc)->data, findMsr(*saved, kMsrTsc)->data);
}

// Saved where the host has no XSAVE (KVM_CAP_XCRS absent, as in the emulated-SVM L1): no XCRs
// in the state, and a restore sets none; the rest still round-trips.
TEST(VcpuState, AStateWithoutXcrsRestoresWithoutSettingThem) {
  auto kvm = KvmSystem::open("/dev/kvm");
  if (!kvm) GTEST_SKIP() << kvm.error().message;
  auto msrs = kvm->msrIndexList();
  ASSERT_TRUE(msrs) << msrs.error().message;
  auto a = makeRig(*kvm);
  ASSERT_TRUE(a);
  kvm_regs regs = *a->vcpu->getRegs();
  regs.rbx = 0x5566;
  ASSERT_TRUE(a->vcpu->setRegs(regs));
  auto saved = VcpuState::capture(*a->vcpu, *msrs, false);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->xcrs.nr_xcrs, 0u);
  auto restored = restoredElsewhere(*kvm, *saved);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ((*restored)->vcpu->getRegs()->rbx, 0x5566u);
}

TEST(Hostile, VcpuStateDecodeRefusesTamperedFields) {
  VcpuState s;
  s.msrs = {{kMsrStar, 0, 1}};
  StateWriter w;
  s.encode(w);
  auto good = w.take();
  {
    StateReader r(good, "VCPU 0");
    VcpuState::decode(r);
    EXPECT_TRUE(r.finish().ok());
  }
  // The regs blob's length (the first u32) says something other than kvm_regs' size.
  auto bad = good;
  bad[0] ^= 1;
  StateReader r1(bad, "VCPU 0");
  VcpuState::decode(r1);
  EXPECT_NE(r1.finish().error().message.find("VCPU 0: regs"), std::string::npos)
      << r1.finish().error().message;
  // nr_xcrs beyond KVM's 16.
  size_t xcrs_at = 4 * 4 + sizeof(kvm_regs) + sizeof(kvm_sregs) + sizeof(abi::Xsave);
  auto many = good;
  many[xcrs_at] = 200;
  StateReader r2(many, "VCPU 0");
  VcpuState::decode(r2);
  EXPECT_NE(r2.finish().error().message.find("holds 200 XCRs"), std::string::npos)
      << r2.finish().error().message;
  // An MSR count over the bound, and a file cut inside the MSRs.
  size_t count_at = xcrs_at + sizeof(kvm_xcrs);
  auto msrs = good;
  msrs[count_at + 2] = 1;  // 65537 MSRs
  StateReader r3(msrs, "VCPU 0");
  VcpuState::decode(r3);
  EXPECT_NE(r3.finish().error().message.find("msr count"), std::string::npos);
  auto cut = std::span<const uint8_t>(good).first(count_at + 6);
  StateReader r4(cut, "VCPU 0");
  VcpuState::decode(r4);
  EXPECT_NE(r4.finish().error().message.find("truncated"), std::string::npos);
}

}  // namespace
}  // namespace ember::kvm
