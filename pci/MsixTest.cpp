// MSI-X: table and PBA access rules (sizes, alignment, bounds, read-only PBA), masking with
// pending bits, the enable bit, vector bounds at notify time, the observer and direct-delivery
// routing that a handed-over interrupt relies on, and KvmMsiSink's backend irqfds on real KVM.
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "kvm/KvmSystem.h"
#include "kvm/LittleEndian.h"
#include "pci/Msix.h"
#include "pci/testing/PciTestSupport.h"

namespace ember::pci {
namespace {

using testing::FakeMsiSink;

constexpr uint64_t kPba = 0x800;

struct MsixRig {
  explicit MsixRig(uint16_t vectors = 3) : state(vectors, sink), region(state, 0, kPba) {}
  FakeMsiSink sink;
  MsixState state;
  MsixBarRegion region;

  uint64_t read(uint64_t off, size_t size) {
    std::vector<uint8_t> d(size, 0xcc);
    region.read(off, d);
    return loadLe<uint64_t>(d);
  }
  void write(uint64_t off, size_t size, uint64_t v) {
    std::vector<uint8_t> d(size);
    storeLe(std::span(d), v);
    region.write(off, d);
  }
  void program(uint16_t vector, uint64_t addr, uint32_t data, bool masked) {
    write(16ULL * vector, 8, addr);
    write(16ULL * vector + 8, 8, data | (uint64_t{masked ? 1u : 0u} << 32));
  }
};

TEST(Msix, PowerOnStateIsDisabledMaskedAndIdle) {
  MsixRig r;
  EXPECT_FALSE(r.state.enabled());
  EXPECT_EQ(r.state.size(), 3);
  EXPECT_EQ(r.state.control(), 2);  // table size - 1
  for (uint16_t v = 0; v < 3; ++v) {
    EXPECT_TRUE(r.state.masked(v));
    EXPECT_FALSE(r.state.pending(v));
    EXPECT_EQ(r.read(16ULL * v + 12, 4), 1u);
  }
  EXPECT_EQ(r.read(kPba, 8), 0u);
}

TEST(Msix, TableDwordAndQwordAccess) {
  MsixRig r;
  r.write(16, 4, 0xfee01003);  // vector 1 address low: bits 1:0 are reserved
  r.write(20, 4, 0x1);
  r.write(24, 4, 0x4041);
  r.write(28, 4, 0xfffffffe);  // only the mask bit exists in vector control
  EXPECT_EQ(r.read(16, 4), 0xfee01000u);
  EXPECT_EQ(r.read(20, 4), 0x1u);
  EXPECT_EQ(r.read(24, 4), 0x4041u);
  EXPECT_EQ(r.read(28, 4), 0x0u);
  EXPECT_EQ(r.read(16, 8), 0x1fee01000ULL);
  EXPECT_EQ(r.read(24, 8), 0x4041ULL);
  r.write(32, 8, 0x00000002fee02000ULL);
  r.write(40, 8, 0x0000000100005151ULL);
  EXPECT_EQ(r.read(32, 4), 0xfee02000u);
  EXPECT_EQ(r.read(36, 4), 0x2u);
  EXPECT_EQ(r.read(40, 4), 0x5151u);
  EXPECT_EQ(r.read(44, 4), 0x1u);
  EXPECT_FALSE(r.state.masked(1));
  EXPECT_TRUE(r.state.masked(2));
}

TEST(Hostile, Case19_MsixOddSizesMisalignedAndCrossingTheEndIgnored) {
  MsixRig r;
  r.program(0, 0xfee00000, 0x41, true);
  // Odd sizes and misaligned accesses neither write nor read anything.
  for (size_t size : {1u, 2u, 3u, 5u, 6u, 7u, 16u}) {
    r.write(0, size, ~0ULL);
    r.write(8, size, ~0ULL);
    EXPECT_EQ(r.read(0, size), 0u) << "size " << size;
  }
  r.write(2, 4, ~0ULL);
  r.write(4, 8, ~0ULL);  // a qword must be 8-aligned
  r.write(13, 4, 0);
  EXPECT_EQ(r.read(0, 8), 0xfee00000ULL);
  EXPECT_EQ(r.read(8, 8), 0x100000041ULL);
  EXPECT_EQ(r.read(2, 4), 0u);
  EXPECT_EQ(r.read(4, 8), 0u);
  EXPECT_TRUE(r.state.masked(0));
  // Past the last entry (3 vectors = 48 bytes) and crossing into the PBA.
  r.write(48, 4, 0x1234);
  r.write(44, 8, 0);
  EXPECT_EQ(r.read(48, 4), 0u);
  EXPECT_EQ(r.read(44, 8), 0u);
  EXPECT_EQ(r.read(kPba - 4, 8), 0u);
  EXPECT_TRUE(r.state.masked(2));
  // Direct calls with offsets near 2^64 do not wrap.
  uint8_t b[8] = {};
  r.state.tableWrite(~0ULL - 3, std::span<const uint8_t>(b, 4));
  r.state.tableRead(~0ULL - 7, std::span<uint8_t>(b, 8));
  r.state.pbaRead(~0ULL - 7, std::span<uint8_t>(b, 8));
  EXPECT_EQ(r.read(0, 8), 0xfee00000ULL);
}

TEST(Hostile, Case19_MsixPbaIsReadOnlyAndBounded) {
  MsixRig r;
  ASSERT_TRUE(r.state.notify(1));  // disabled: pending
  EXPECT_EQ(r.read(kPba, 8), 0x2ULL);
  EXPECT_EQ(r.read(kPba, 4), 0x2u);
  EXPECT_EQ(r.read(kPba + 4, 4), 0u);
  r.write(kPba, 8, 0);  // read-only
  r.write(kPba, 4, ~0ULL);
  EXPECT_EQ(r.read(kPba, 8), 0x2ULL);
  EXPECT_EQ(r.read(kPba + 8, 8), 0u);  // past the PBA (one qword for 3 vectors)
  EXPECT_EQ(r.read(kPba + 4, 8), 0u);  // misaligned
  EXPECT_EQ(r.read(kPba + 1, 1), 0u);  // byte
  EXPECT_EQ(r.read(0xfff, 1), 0u);
  EXPECT_TRUE(r.sink.fired().empty());
  EXPECT_TRUE(r.state.pending(1));
}

TEST(Hostile, Case19_MsixRandomAccessesStayInBounds) {
  MsixRig r(5);
  std::mt19937_64 rng(19);
  for (int i = 0; i < 20000; ++i) {
    size_t size = 1 + rng() % 8;
    uint64_t off = rng() % 0x1000;
    if (rng() % 2) {
      (void)r.read(off, size);
    } else {
      r.write(off, size, rng());
    }
    if (rng() % 16 == 0) r.state.writeControl(static_cast<uint16_t>(rng()));
    if (rng() % 16 == 0) (void)r.state.notify(static_cast<uint16_t>(rng() % 8));
  }
  for (uint16_t v : r.sink.fired()) EXPECT_LT(v, 5);
  for (const auto& route : r.sink.routes()) EXPECT_LT(route.vector, 5);
}

TEST(Msix, VectorMaskSetsPendingAndUnmaskDelivers) {
  MsixRig r;
  r.state.writeControl(MsixState::kControlEnable);
  r.program(1, 0xfee01000, 0x4041, /*masked=*/true);
  EXPECT_TRUE(r.state.notify(1));
  EXPECT_TRUE(r.sink.fired().empty());
  EXPECT_TRUE(r.state.pending(1));
  EXPECT_EQ(r.read(kPba, 4), 0x2u);
  r.write(16 + 12, 4, 0);  // unmask
  ASSERT_EQ(r.sink.fired(), std::vector<uint16_t>{1});
  ASSERT_EQ(r.sink.routes().size(), 1u);
  EXPECT_EQ(r.sink.routes()[0].address, 0xfee01000u);
  EXPECT_EQ(r.sink.routes()[0].data, 0x4041u);
  EXPECT_FALSE(r.state.pending(1));
  EXPECT_EQ(r.read(kPba, 4), 0u);
  // Unmasked: straight through.
  EXPECT_TRUE(r.state.notify(1));
  EXPECT_EQ(r.sink.firedCount(1), 2u);
}

TEST(Msix, FunctionMaskSetsPendingAndClearingItDelivers) {
  MsixRig r;
  r.program(0, 0xfee00000, 0x30, false);
  r.program(2, 0xfee00000, 0x32, false);
  r.state.writeControl(MsixState::kControlEnable | MsixState::kControlFunctionMask);
  EXPECT_EQ(r.state.control(), MsixState::kControlEnable | MsixState::kControlFunctionMask | 2);
  EXPECT_TRUE(r.state.notify(0));
  EXPECT_TRUE(r.state.notify(2));
  EXPECT_TRUE(r.sink.fired().empty());
  EXPECT_EQ(r.read(kPba, 4), 0x5u);
  r.state.writeControl(MsixState::kControlEnable);
  EXPECT_EQ(r.sink.fired(), (std::vector<uint16_t>{0, 2}));
  EXPECT_EQ(r.read(kPba, 4), 0u);
}

TEST(Msix, EnableBitGatesDelivery) {
  MsixRig r;
  r.program(0, 0xfee00000, 0x30, false);
  EXPECT_TRUE(r.state.notify(0));  // disabled: held pending
  EXPECT_TRUE(r.sink.fired().empty());
  EXPECT_TRUE(r.state.pending(0));
  r.state.writeControl(MsixState::kControlEnable);
  EXPECT_TRUE(r.state.enabled());
  EXPECT_EQ(r.sink.fired(), std::vector<uint16_t>{0});
  r.state.writeControl(0);
  EXPECT_FALSE(r.state.enabled());
  r.state.reset();
  EXPECT_TRUE(r.state.masked(0));
  EXPECT_EQ(r.read(0, 8), 0u);
}

TEST(Hostile, Case17_MsixNotifyWithVectorOutsideTheTable) {
  MsixRig r;
  r.state.writeControl(MsixState::kControlEnable);
  EXPECT_FALSE(r.state.notify(3));
  EXPECT_FALSE(r.state.notify(0xffff));
  EXPECT_FALSE(r.state.pending(3));
  EXPECT_TRUE(r.state.masked(3));
  EXPECT_TRUE(r.sink.fired().empty());
  EXPECT_TRUE(r.sink.routes().empty());
}

TEST(Msix, ObserverHearsOfEveryChangeThatMovesAMessage) {
  MsixRig r;
  std::vector<std::optional<uint16_t>> heard;
  r.state.setObserver([&](std::optional<uint16_t> v) { heard.push_back(v); });
  r.state.writeControl(MsixState::kControlEnable);
  r.program(2, 0xfee00000, 0x41, false);  // two qword writes to entry 2
  r.state.reset();
  ASSERT_EQ(heard.size(), 4u);
  EXPECT_EQ(heard[0], std::nullopt);
  EXPECT_EQ(heard[1], std::optional<uint16_t>(2));
  EXPECT_EQ(heard[2], std::optional<uint16_t>(2));
  EXPECT_EQ(heard[3], std::nullopt);
  r.state.setObserver(nullptr);
  r.state.writeControl(0);
  EXPECT_EQ(heard.size(), 4u);
}

TEST(Msix, DirectDeliveryOnlyForADeliverableVectorWithItsRouteProgrammed) {
  MsixRig r;
  r.program(1, 0xfee01000, 0x51, false);
  EXPECT_FALSE(r.state.routeForDirectDelivery(1)) << "MSI-X is off";
  r.state.writeControl(MsixState::kControlEnable);
  EXPECT_TRUE(r.state.routeForDirectDelivery(1));
  ASSERT_EQ(r.sink.routes().size(), 1u);
  EXPECT_EQ(r.sink.routes()[0].address, 0xfee01000u);
  EXPECT_EQ(r.sink.routes()[0].data, 0x51u);
  EXPECT_TRUE(r.state.routeForDirectDelivery(1));
  EXPECT_EQ(r.sink.routes().size(), 1u) << "programmed once until the entry changes";
  r.program(1, 0xfee02000, 0x52, false);
  EXPECT_TRUE(r.state.routeForDirectDelivery(1));
  EXPECT_EQ(r.sink.routes().back().address, 0xfee02000u);
  r.program(1, 0xfee02000, 0x52, true);
  EXPECT_FALSE(r.state.routeForDirectDelivery(1)) << "masked";
  r.state.writeControl(MsixState::kControlEnable | MsixState::kControlFunctionMask);
  EXPECT_FALSE(r.state.routeForDirectDelivery(0));
  EXPECT_FALSE(r.state.routeForDirectDelivery(3)) << "outside the table";
  EXPECT_TRUE(r.sink.fired().empty()) << "routing is not sending";
}

// Real KVM: a backend's eventfd becomes a second irqfd on a vector's GSI and goes away again.
TEST(KvmMsiSink, AttachesAndDetachesABackendIrqfdOnTheVectorsRoute) {
  auto kvm = kvm::KvmSystem::open("/dev/kvm");
  if (!kvm) {
    GTEST_SKIP() << kvm.error().message;
  }
  auto vm = kvm::Vm::create(*kvm);
  ASSERT_TRUE(vm) << vm.error().message;
  ASSERT_TRUE((*vm)->setUpIrqchip(0xfffbd000, 0xfffbc000));
  KvmMsiSink sink(**vm, 2);
  auto backend = EventFd::create();
  ASSERT_TRUE(backend);
  auto early = sink.attachIrqfd(0, backend->fd());
  ASSERT_FALSE(early) << "no route yet";
  EXPECT_EQ(early.error().code, Errc::NotFound);
  sink.setRoute(0, 0xfee00000, 0x40);
  auto attached = sink.attachIrqfd(0, backend->fd());
  ASSERT_TRUE(attached) << attached.error().message;
  EXPECT_FALSE(sink.attachIrqfd(0, backend->fd())) << "KVM refuses the same eventfd twice";
  sink.detachIrqfd(0, backend->fd());
  EXPECT_TRUE(sink.attachIrqfd(0, backend->fd())) << "attachable again once detached";
  sink.detachIrqfd(0, backend->fd());
  EXPECT_FALSE(sink.attachIrqfd(1, backend->fd())) << "vector 1 has no route";
}

}  // namespace
}  // namespace ember::pci
