// The legacy face of VirtioPciTransport (virtio 1.2, 4.1.5.1): feature negotiation, queue PFN
// layout, PFN 0 reset, MSI-X vector registers and the device-config offset move, ISR and INTx,
// and hostile-guest cases 12, 13 and 16-18 on the legacy register layout.
#include <gtest/gtest.h>

#include "devices/VirtioRng.h"
#include "kvm/Log.h"
#include "virtio/VirtioPciTransport.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::virtio {
namespace {

using namespace testing;
using T = VirtioPciTransport;

constexpr uint32_t kPfn = 0x10;  // rings at 0x10000
constexpr uint32_t kRngFeatures =
    static_cast<uint32_t>(feature::kIndirectDesc | feature::kEventIdx);

// A device with two queues and an 8-byte device configuration whose bytes are 0xa0..0xa7, so
// that the offset at which the transport places the configuration is visible.
class ProbeDevice : public VirtioDevice {
 public:
  std::string name() const override { return "probe"; }
  uint16_t deviceType() const override { return 0x22; }
  uint64_t features() const override { return 0x3 | feature::kEventIdx; }
  uint16_t queueCount() const override { return 2; }
  uint16_t queueMaxSize(uint16_t q) const override { return q == 0 ? 64 : 16; }
  uint32_t configSize() const override { return 8; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override {
    uint8_t image[8] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
    readConfigBytes(image, offset, data);
  }
  void writeConfig(uint32_t offset, std::span<const uint8_t> data) override {
    config_writes->push_back({offset, data.size()});
  }
  Result<void> activate(Activation a) override {
    *activations += 1;
    *last_features = a.features;
    return {};
  }
  void notify(uint16_t queue) override { notifies->push_back(queue); }
  QueueSet reset() override {
    *resets += 1;
    return {};
  }
  DeviceCounters counters() const override { return DeviceCounters{notifies->size(), 0, 0, 0}; }

  std::shared_ptr<std::vector<std::pair<uint32_t, size_t>>> config_writes =
      std::make_shared<std::vector<std::pair<uint32_t, size_t>>>();
  std::shared_ptr<std::vector<uint16_t>> notifies = std::make_shared<std::vector<uint16_t>>();
  std::shared_ptr<int> activations = std::make_shared<int>(0);
  std::shared_ptr<int> resets = std::make_shared<int>(0);
  std::shared_ptr<uint64_t> last_features = std::make_shared<uint64_t>(0);
};

struct ProbeRig {
  ProbeRig() : h(make()) {}
  std::unique_ptr<VirtioDevice> make() {
    auto d = std::make_unique<ProbeDevice>();
    probe = d.get();
    return d;
  }
  ProbeDevice* probe = nullptr;
  TransportHarness h;
};

struct RngRig {
  RngRig() : h(std::make_unique<devices::VirtioRng>()), drv(h.mem, 256, uint64_t{kPfn} << 12) {}
  TransportHarness h;
  MockDriver drv;
  uint64_t request(uint32_t len = 64) {
    uint64_t buf = drv.alloc(len);
    drv.post({{buf, len, true}});
    h.kickLegacy(0);
    return buf;
  }
};

TEST(VirtioPciLegacy, FeatureNegotiation) {
  RngRig r;
  EXPECT_EQ(r.h.legacyRead(legacy::kHostFeatures, 4), kRngFeatures);
  EXPECT_FALSE(r.h.t->legacyMode());
  log::ScopedLogCapture logs;
  r.h.legacyWrite(legacy::kGuestFeatures, 4, 0xffffffff);
  EXPECT_TRUE(r.h.t->legacyMode());
  EXPECT_TRUE(logs.contains("not offered")) << ::testing::PrintToString(logs.lines());
  EXPECT_EQ(r.h.legacyRead(legacy::kGuestFeatures, 4), kRngFeatures);
  r.h.legacyWrite(legacy::kGuestFeatures, 4, feature::kEventIdx);
  EXPECT_EQ(r.h.legacyRead(legacy::kGuestFeatures, 4), feature::kEventIdx);
  // Only dword accesses reach the feature registers.
  r.h.legacyWrite(legacy::kGuestFeatures, 2, 0);
  EXPECT_EQ(r.h.legacyRead(legacy::kGuestFeatures, 4), feature::kEventIdx);
  EXPECT_EQ(r.h.legacyRead(legacy::kHostFeatures, 2), 0u);
  // A reset leaves legacy mode.
  r.h.legacyWrite(legacy::kStatus, 1, 0);
  EXPECT_FALSE(r.h.t->legacyMode());
  EXPECT_EQ(r.h.legacyRead(legacy::kGuestFeatures, 4), 0u);
}

TEST(VirtioPciLegacy, FeaturesFrozenAfterDriverOk) {
  ProbeRig r;
  r.h.legacyInit(0x1, {});
  EXPECT_EQ(*r.probe->activations, 1);
  EXPECT_EQ(*r.probe->last_features, 0x1u) << "legacy activation without VERSION_1";
  r.h.legacyWrite(legacy::kGuestFeatures, 4, 0x3);
  EXPECT_EQ(r.h.legacyRead(legacy::kGuestFeatures, 4), 0x1u);
}

TEST(VirtioPciLegacy, QueuePfnLayoutAndRequest) {
  RngRig r;
  r.h.legacyWrite(legacy::kQueueSelect, 2, 0);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueSize, 2), 256u);
  r.h.legacyInit(0, {kPfn});
  EXPECT_EQ(r.h.legacyRead(legacy::kQueuePfn, 4), kPfn);
  EXPECT_EQ(r.h.legacyStatus(), status::kAcknowledge | status::kDriver | status::kDriverOk);
  // The transport derived the same layout the mock driver uses: descriptors at PFN << 12, the
  // available ring right after, the used ring on the next 4096-byte boundary.
  QueueGeometry g = r.drv.geometry();
  EXPECT_EQ(g.used % legacy::kQueueAlign, 0u);
  EXPECT_EQ(g.used, 0x10000u + 0x1000 + 0x1000);
  uint64_t buf = r.request(48);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 48u);
  (void)buf;
  // Queue size is read-only on the legacy face.
  r.h.legacyWrite(legacy::kQueueSize, 2, 16);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueSize, 2), 256u);
}

TEST(VirtioPciLegacy, QueuePfnZeroResetsTheDevice) {
  RngRig r;
  r.h.legacyInit(0, {kPfn});
  r.request();
  ASSERT_EQ(r.drv.usedIdx(), 1);
  r.h.legacyWrite(legacy::kQueueSelect, 2, 0);
  r.h.legacyWrite(legacy::kQueuePfn, 4, 0);
  EXPECT_EQ(r.h.legacyStatus(), 0);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueuePfn, 4), 0u);
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1) << "the device was stopped";
}

TEST(VirtioPciLegacy, MsixVectorRegistersAndDeviceConfigOffset) {
  ProbeRig r;
  // MSI-X off: device configuration at 20.
  EXPECT_EQ(r.h.legacyRead(20, 4), 0xa3a2a1a0u);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), 0xa3a2u);
  EXPECT_EQ(r.h.legacyRead(27, 1), 0xa7u);
  EXPECT_EQ(r.h.legacyRead(28, 4), 0u) << "past the device configuration";
  r.h.legacyWrite(21, 1, 0x55);
  ASSERT_EQ(r.probe->config_writes->size(), 1u);
  EXPECT_EQ(r.probe->config_writes->back().first, 1u);
  // MSI-X on: vectors at 20 and 22, configuration at 24.
  r.h.enableMsix(true);
  EXPECT_EQ(r.h.legacyRead(legacy::kConfigVector, 2), kNoVector);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), kNoVector);
  EXPECT_EQ(r.h.legacyRead(24, 4), 0xa3a2a1a0u);
  EXPECT_EQ(r.h.legacyRead(31, 1), 0xa7u);
  r.h.legacyWrite(legacy::kConfigVector, 2, 2);
  EXPECT_EQ(r.h.legacyRead(legacy::kConfigVector, 2), 2u);
  r.h.legacyWrite(legacy::kQueueSelect, 2, 1);
  r.h.legacyWrite(legacy::kQueueVector, 2, 1);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), 1u);
  r.h.legacyWrite(legacy::kQueueSelect, 2, 0);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), kNoVector);
  r.h.legacyWrite(25, 1, 0x55);
  EXPECT_EQ(r.probe->config_writes->back().first, 1u);
  // Vector registers did not write the device configuration.
  EXPECT_EQ(r.probe->config_writes->size(), 2u);
  // MSI-X off again: the configuration moves back to 20.
  r.h.enableMsix(false);
  EXPECT_EQ(r.h.legacyRead(20, 4), 0xa3a2a1a0u);
}

TEST(VirtioPciLegacy, IsrReadToClearAndIntxLevel) {
  RngRig r;
  r.h.legacyInit(0, {kPfn});
  r.request();
  EXPECT_TRUE(r.h.intx->level());
  EXPECT_EQ(r.h.legacyRead(legacy::kIsr, 1), kIsrQueue);
  EXPECT_FALSE(r.h.intx->level());
  EXPECT_EQ(r.h.legacyRead(legacy::kIsr, 1), 0u);
  r.request();
  r.request();
  EXPECT_TRUE(r.h.intx->level());
  EXPECT_EQ(r.h.legacyRead(legacy::kIsr, 1), kIsrQueue);
  EXPECT_FALSE(r.h.intx->level());
  auto changes = r.h.intx->changes();
  EXPECT_EQ(changes, (std::vector<bool>{true, false, true, false}));
  // With MSI-X on, INTx stays low and the ISR is not used.
  r.h.enableMsix(true);
  r.request();
  EXPECT_FALSE(r.h.intx->level());
}

TEST(VirtioPciLegacy, PendingIntxDropsWhenMsixIsEnabled) {
  RngRig r;
  r.h.legacyInit(0, {kPfn});
  r.request();
  ASSERT_TRUE(r.h.intx->level());
  r.h.enableMsix(true);
  EXPECT_FALSE(r.h.intx->level());
}

TEST(Hostile, Case12_LegacyPfnOutsideRamSetsNeedsReset) {
  for (uint32_t pfn : {uint32_t(kHoleStart >> 12), uint32_t((kRegion2End >> 12) - 1), 0xffffffffu,
                       uint32_t((kHighRegionEnd >> 12) - 1)}) {
    RngRig r;
    log::ScopedLogCapture logs;
    r.h.legacyInit(0, {pfn});
    EXPECT_NE(r.h.legacyStatus() & status::kNeedsReset, 0) << std::hex << pfn;
    EXPECT_TRUE(logs.contains("virtio-rng: queue 0:")) << ::testing::PrintToString(logs.lines());
    EXPECT_EQ(r.h.legacyRead(legacy::kIsr, 1), kIsrConfig);
  }
}

TEST(Hostile, Case13_LegacyPfnRewrittenAfterDriverOkIgnored) {
  RngRig r;
  r.h.legacyInit(0, {kPfn});
  r.h.legacyWrite(legacy::kQueueSelect, 2, 0);
  r.h.legacyWrite(legacy::kQueuePfn, 4, kHoleStart >> 12);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueuePfn, 4), kPfn);
  EXPECT_EQ(r.h.legacyStatus() & status::kNeedsReset, 0);
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
}

TEST(Hostile, Case16_QueueSelectOutOfRangeLegacy) {
  ProbeRig r;
  r.h.enableMsix(true);
  r.h.legacyWrite(legacy::kStatus, 1, status::kAcknowledge | status::kDriver);
  for (uint16_t sel : {uint16_t{2}, uint16_t{0x8000}, uint16_t{0xffff}}) {
    r.h.legacyWrite(legacy::kQueueSelect, 2, sel);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueueSelect, 2), sel);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueueSize, 2), 0u);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueuePfn, 4), 0u);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), kNoVector);
    r.h.legacyWrite(legacy::kQueuePfn, 4, kPfn);
    r.h.legacyWrite(legacy::kQueueVector, 2, 0);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueuePfn, 4), 0u);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), kNoVector);
  }
  for (uint16_t q = 0; q < 2; ++q) {
    r.h.legacyWrite(legacy::kQueueSelect, 2, q);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueuePfn, 4), 0u);
    EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), kNoVector);
  }
  // Neither queue became enabled: activation sees none.
  r.h.legacyWrite(legacy::kStatus, 1, status::kAcknowledge | status::kDriver | status::kDriverOk);
  EXPECT_EQ(*r.probe->activations, 1);
}

TEST(Hostile, Case17_VectorOutsideTableReadsNoVectorLegacy) {
  ProbeRig r;  // 2 queues + config: vectors 0..2
  r.h.enableMsix(true);
  r.h.legacyWrite(legacy::kConfigVector, 2, 3);
  EXPECT_EQ(r.h.legacyRead(legacy::kConfigVector, 2), kNoVector);
  r.h.legacyWrite(legacy::kConfigVector, 2, 0xfffe);
  EXPECT_EQ(r.h.legacyRead(legacy::kConfigVector, 2), kNoVector);
  r.h.legacyWrite(legacy::kQueueSelect, 2, 1);
  r.h.legacyWrite(legacy::kQueueVector, 2, 3);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), kNoVector);
  r.h.legacyWrite(legacy::kQueueVector, 2, 2);
  EXPECT_EQ(r.h.legacyRead(legacy::kQueueVector, 2), 2u);
  // The same registers from the modern face agree.
  r.h.commonWrite(common::kQueueSelect, 2, 1);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), 2u);
}

TEST(Hostile, Case18_NotifyForMissingQueueLegacy) {
  ProbeRig r;
  r.h.legacyInit(0, {kPfn, kPfn + 0x10});
  ASSERT_EQ(*r.probe->activations, 1);
  r.probe->notifies->clear();
  log::ScopedLogCapture logs;
  r.h.kickLegacy(2);
  r.h.kickLegacy(0xffff);
  EXPECT_TRUE(logs.contains("notify for queue 2 of 2")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(logs.contains("notify for queue 65535 of 2"));
  EXPECT_TRUE(r.probe->notifies->empty());
  r.h.legacyWrite(legacy::kQueueNotify, 4, 1);  // wrong width: not the notify register
  r.h.legacyWrite(legacy::kQueueNotify, 1, 1);
  EXPECT_TRUE(r.probe->notifies->empty());
  r.h.kickLegacy(1);
  EXPECT_EQ(*r.probe->notifies, std::vector<uint16_t>{1});
}

TEST(VirtioPciLegacy, OddAccessesToHeaderRegistersAreHarmless) {
  ProbeRig r;
  for (uint64_t off = 0; off < 24; ++off) {
    for (size_t size : {1u, 2u, 4u}) {
      (void)r.h.legacyRead(off, size);
    }
  }
  // Writes of unexpected widths to every header offset except status/notify/PFN do nothing.
  for (uint64_t off : {0u, 1u, 2u, 5u, 6u, 9u, 12u, 13u, 15u, 17u, 19u}) {
    r.h.legacyWrite(off, 1, 0xff);
    r.h.legacyWrite(off, 2, 0xffff);
  }
  EXPECT_EQ(r.h.legacyStatus(), 0);
  EXPECT_EQ(*r.probe->activations, 0);
  EXPECT_TRUE(r.probe->notifies->empty());
}

}  // namespace
}  // namespace ember::virtio
