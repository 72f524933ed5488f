// VirtioInterrupt without KVM (a fake MSI sink that records what KVM would be asked to do): MSI-X
// and INTx delivery, the ISR, NO_VECTOR; and the handover of a queue's interrupt to a backend,
// whose eventfd is an irqfd while the vector can be delivered and is served by the loop (setting
// the PBA bit) while the guest masks it, and whose pending signal is delivered on take-back.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <utility>
#include <vector>

#include "kvm/LittleEndian.h"
#include "pci/testing/PciTestSupport.h"
#include "virtio/VirtioInterrupt.h"

namespace ember::virtio {
namespace {

using pci::MsixState;

struct Rig {
  Rig() : loop(std::move(EventLoop::create()).value()) {
    auto s = std::make_unique<pci::testing::FakeMsiSink>();
    sink = s.get();
    irq = std::make_unique<VirtioInterrupt>("test-device", 2, std::move(s), loop.get());
    auto line = std::make_unique<pci::testing::FakeInterruptLine>();
    intx = line.get();
    irq->setIntxLine(std::move(line));
  }
  void tableWrite(uint16_t vector, uint64_t field, uint32_t value) {
    uint8_t b[4];
    storeLe<uint32_t>(b, value);
    irq->msix().tableWrite(16ULL * vector + field, b);
  }
  // MSI-X on, vector `v` programmed and unmasked.
  void enableVector(uint16_t v) {
    irq->msix().writeControl(MsixState::kControlEnable);
    tableWrite(v, 0, 0xfee00000);
    tableWrite(v, 8, 0x40 + v);
    tableWrite(v, 12, 0);
  }
  void mask(uint16_t v, bool masked) { tableWrite(v, 12, masked ? 1 : 0); }
  std::vector<std::pair<uint16_t, int>> attached() const { return sink->attached(); }

  std::unique_ptr<EventLoop> loop;
  pci::testing::FakeMsiSink* sink = nullptr;
  pci::testing::FakeInterruptLine* intx = nullptr;
  std::unique_ptr<VirtioInterrupt> irq;
};

TEST(VirtioInterrupt, MsixDeliversTheQueuesVectorAndCountsIt) {
  Rig r;
  r.enableVector(1);
  r.irq->setQueueVector(0, 1);
  r.irq->raiseQueue(0);
  EXPECT_EQ(r.sink->firedCount(1), 1u);
  EXPECT_EQ(r.irq->msixRaised(), 1u);
  EXPECT_EQ(r.irq->intxRaised(), 0u);
  r.irq->setQueueVector(1, kNoVector);
  r.irq->raiseQueue(1);  // the driver asked for no interrupt
  r.irq->raiseQueue(7);  // no such queue
  EXPECT_EQ(r.sink->fired().size(), 1u);
}

TEST(VirtioInterrupt, WithoutMsixTheIsrDrivesIntx) {
  Rig r;
  r.irq->raiseQueue(0);
  EXPECT_TRUE(r.intx->level());
  EXPECT_TRUE(r.irq->intxLevel());
  r.irq->raiseConfig();
  EXPECT_EQ(r.irq->readIsr(), kIsrQueue | kIsrConfig);
  EXPECT_FALSE(r.intx->level()) << "reading the ISR lowers the line";
  EXPECT_EQ(r.irq->readIsr(), 0);
  r.irq->setIntxDisabled(true);
  r.irq->raiseQueue(0);
  EXPECT_FALSE(r.intx->level()) << "Interrupt Disable in the command register";
  r.irq->setIntxDisabled(false);
  EXPECT_TRUE(r.intx->level());
  EXPECT_EQ(r.irq->intxRaised(), 3u);
}

TEST(VirtioInterrupt, AHandedOverInterruptIsAnIrqfdWhileItsVectorCanBeDelivered) {
  Rig r;
  r.enableVector(1);
  r.irq->setQueueVector(0, 1);
  auto fd = r.irq->handOver(0);
  ASSERT_TRUE(fd) << fd.error().message;
  EXPECT_TRUE(r.irq->handedOver(0));
  EXPECT_TRUE(r.irq->direct(0));
  EXPECT_EQ(r.attached(), (std::vector<std::pair<uint16_t, int>>{{1, *fd}}));
  ASSERT_FALSE(r.sink->routes().empty()) << "the route is programmed before the irqfd";
  EXPECT_EQ(r.sink->routes().back().vector, 1);
  // Signalled by the backend: KVM delivers it; ember's loop has nothing to do.
  ASSERT_EQ(eventfd_write(*fd, 1), 0);
  r.loop->runOnce(0);
  EXPECT_EQ(r.sink->fired().size(), 0u);
}

TEST(VirtioInterrupt, MaskingSendsTheBackendsSignalsToThePendingBit) {
  Rig r;
  r.enableVector(1);
  r.irq->setQueueVector(0, 1);
  auto fd = r.irq->handOver(0);
  ASSERT_TRUE(fd);
  r.mask(1, true);
  EXPECT_TRUE(r.attached().empty()) << "no irqfd while the vector is masked";
  EXPECT_FALSE(r.irq->direct(0));
  ASSERT_EQ(eventfd_write(*fd, 1), 0);
  r.loop->runOnce(1000);
  EXPECT_TRUE(r.irq->msix().pending(1)) << "the PBA bit";
  EXPECT_EQ(r.sink->fired().size(), 0u);
  // Unmask: the pending message goes out, and the irqfd comes back.
  r.mask(1, false);
  EXPECT_EQ(r.sink->firedCount(1), 1u);
  EXPECT_FALSE(r.irq->msix().pending(1));
  EXPECT_EQ(r.attached(), (std::vector<std::pair<uint16_t, int>>{{1, *fd}}));
}

TEST(VirtioInterrupt, FunctionMaskAndMsixOffAlsoTakeTheIrqfdAway) {
  Rig r;
  r.enableVector(0);
  r.irq->setQueueVector(1, 0);
  auto fd = r.irq->handOver(1);
  ASSERT_TRUE(fd);
  r.irq->msix().writeControl(MsixState::kControlEnable | MsixState::kControlFunctionMask);
  EXPECT_TRUE(r.attached().empty());
  r.irq->msix().writeControl(MsixState::kControlEnable);
  EXPECT_EQ(r.attached().size(), 1u);
  // MSI-X off: the loop raises it through the ISR and INTx.
  r.irq->msix().writeControl(0);
  r.irq->msixControlChanged();
  EXPECT_TRUE(r.attached().empty());
  ASSERT_EQ(eventfd_write(*fd, 1), 0);
  r.loop->runOnce(1000);
  EXPECT_TRUE(r.intx->level());
  EXPECT_EQ(r.irq->readIsr(), kIsrQueue);
}

TEST(VirtioInterrupt, ANewVectorMovesTheIrqfd) {
  Rig r;
  r.enableVector(0);
  r.enableVector(2);
  r.irq->setQueueVector(0, 0);
  auto fd = r.irq->handOver(0);
  ASSERT_TRUE(fd);
  r.irq->setQueueVector(0, 2);
  EXPECT_EQ(r.attached(), (std::vector<std::pair<uint16_t, int>>{{2, *fd}}));
  r.irq->setQueueVector(0, kNoVector);
  EXPECT_TRUE(r.attached().empty());
}

TEST(VirtioInterrupt, ARefusedIrqfdFallsBackToTheLoop) {
  Rig r;
  r.sink->refuse_attach = true;
  r.enableVector(1);
  r.irq->setQueueVector(0, 1);
  auto fd = r.irq->handOver(0);
  ASSERT_TRUE(fd);
  EXPECT_FALSE(r.irq->direct(0));
  ASSERT_EQ(eventfd_write(*fd, 1), 0);
  r.loop->runOnce(1000);
  EXPECT_EQ(r.sink->firedCount(1), 1u) << "delivered by ember instead";
}

TEST(VirtioInterrupt, TakeBackDeliversASignalNotYetDelivered) {
  Rig r;
  r.enableVector(1);
  r.irq->setQueueVector(0, 1);
  auto fd = r.irq->handOver(0);
  ASSERT_TRUE(fd);
  r.mask(1, true);
  ASSERT_EQ(eventfd_write(*fd, 1), 0);  // not yet read by the loop
  r.irq->takeBack(0);
  EXPECT_FALSE(r.irq->handedOver(0));
  EXPECT_TRUE(r.irq->msix().pending(1)) << "raised on take-back (masked: pending)";
  EXPECT_TRUE(r.attached().empty());
  r.loop->runOnce(0);
  EXPECT_EQ(r.irq->msixRaised(), 1u) << "exactly once";
}

TEST(VirtioInterrupt, ResetTakesEverythingBackAndForgetsVectors) {
  Rig r;
  r.enableVector(1);
  r.irq->setQueueVector(0, 1);
  r.irq->setConfigVector(1);
  ASSERT_TRUE(r.irq->handOver(0));
  r.irq->reset();
  EXPECT_FALSE(r.irq->handedOver(0));
  EXPECT_TRUE(r.attached().empty());
  r.irq->raiseQueue(0);
  r.irq->raiseConfig();
  EXPECT_EQ(r.sink->fired().size(), 0u) << "NO_VECTOR after a reset";
  EXPECT_TRUE(r.irq->msix().enabled()) << "the MSI-X table is PCI state and stays";
}

TEST(VirtioInterrupt, HandoverMisuseIsRefused) {
  Rig r;
  EXPECT_FALSE(r.irq->handOver(2)) << "no queue 2";
  ASSERT_TRUE(r.irq->handOver(0));
  auto twice = r.irq->handOver(0);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::Busy);
  VirtioInterrupt no_loop("no-loop", 1, std::make_unique<pci::testing::FakeMsiSink>(), nullptr);
  EXPECT_FALSE(no_loop.handOver(0));
}

}  // namespace
}  // namespace ember::virtio
