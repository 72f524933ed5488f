// DriverState without PCI: the power-on state, the features offered on each face, the status
// state machine's rules (2.1, 3.1.1; hostile-guest case 20), reset, the legacy ring layout
// (2.7.2) and the validation of the live queues (cases 12-13).
#include <gtest/gtest.h>

#include "virtio/DriverState.h"
#include "virtio/testing/MockDriver.h"

namespace ember::virtio {
namespace {

using testing::makeTestMemory;
using testing::MockDriver;

constexpr uint64_t kDeviceFeatures = 0x3 | feature::kEventIdx | (1ULL << 40);

DriverState twoQueues() {
  const uint16_t sizes[] = {64, 16};
  return DriverState::forQueues(sizes);
}

TEST(DriverState, PowerOnState) {
  DriverState s = twoQueues();
  EXPECT_EQ(s.status, 0);
  EXPECT_FALSE(s.legacy);
  EXPECT_EQ(s.config_vector, kNoVector);
  ASSERT_EQ(s.queues.size(), 2u);
  EXPECT_EQ(s.queues[0].max_size, 64);
  EXPECT_EQ(s.queues[0].size, 64);
  EXPECT_EQ(s.queues[1].size, 16);
  EXPECT_EQ(s.queues[1].vector, kNoVector);
  EXPECT_FALSE(s.queues[0].enabled);
}

TEST(DriverState, SelectedQueueIsNullOutOfRange) {
  DriverState s = twoQueues();
  s.queue_select = 1;
  ASSERT_NE(s.selectedQueue(), nullptr);
  EXPECT_EQ(s.selectedQueue()->max_size, 16);
  s.queue_select = 2;
  EXPECT_EQ(s.selectedQueue(), nullptr);
  s.queue_select = 0xffff;
  EXPECT_EQ(s.selectedQueue(), nullptr);
}

TEST(DriverState, OfferedFeaturesPerFace) {
  DriverState s = twoQueues();
  EXPECT_EQ(s.offeredFeatures(kDeviceFeatures), kDeviceFeatures | feature::kVersion1);
  s.legacy = true;
  EXPECT_EQ(s.offeredFeatures(kDeviceFeatures), kDeviceFeatures & 0xffffffffULL);
}

TEST(DriverState, ZeroAsksForAResetAndChangesNothing) {
  DriverState s = twoQueues();
  s.status = status::kAcknowledge | status::kDriver;
  StatusChange c = s.writeStatus(0, kDeviceFeatures);
  EXPECT_TRUE(c.reset);
  EXPECT_FALSE(c.activate);
  EXPECT_EQ(s.status, status::kAcknowledge | status::kDriver);
}

TEST(DriverState, BitsAreNotClearedWithoutAReset) {
  DriverState s = twoQueues();
  s.writeStatus(status::kAcknowledge | status::kDriver, kDeviceFeatures);
  StatusChange c = s.writeStatus(status::kAcknowledge, kDeviceFeatures);
  EXPECT_EQ(s.status, status::kAcknowledge | status::kDriver);
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_NE(c.refused[0].find("clear status bits 0x2"), std::string::npos) << c.refused[0];
}

TEST(DriverState, FeaturesOkSticksOnlyForOfferedFeaturesWithVersion1) {
  DriverState s = twoQueues();
  s.driver_features = 0x1 | feature::kVersion1;
  EXPECT_TRUE(s.writeStatus(status::kFeaturesOk, kDeviceFeatures).refused.empty());
  EXPECT_TRUE(s.status & status::kFeaturesOk);

  DriverState unoffered = twoQueues();
  unoffered.driver_features = 0x4 | feature::kVersion1;
  StatusChange c = unoffered.writeStatus(status::kFeaturesOk, kDeviceFeatures);
  EXPECT_FALSE(unoffered.status & status::kFeaturesOk);
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_NE(c.refused[0].find("not offered"), std::string::npos) << c.refused[0];

  DriverState no_version = twoQueues();
  no_version.driver_features = 0x1;
  c = no_version.writeStatus(status::kFeaturesOk, kDeviceFeatures);
  EXPECT_FALSE(no_version.status & status::kFeaturesOk);
  ASSERT_EQ(c.refused.size(), 1u);
  EXPECT_NE(c.refused[0].find("VERSION_1"), std::string::npos) << c.refused[0];

  DriverState legacy = twoQueues();  // the legacy face has no VERSION_1
  legacy.legacy = true;
  legacy.driver_features = 0x1;
  EXPECT_TRUE(legacy.writeStatus(status::kFeaturesOk, kDeviceFeatures).refused.empty());
  EXPECT_TRUE(legacy.status & status::kFeaturesOk);
}

TEST(DriverState, DriverOkActivatesOnceAndNeedsFeaturesOkOnTheModernFace) {
  DriverState s = twoQueues();
  StatusChange c = s.writeStatus(status::kDriverOk, kDeviceFeatures);
  EXPECT_FALSE(c.activate);
  EXPECT_FALSE(s.driverOk());
  EXPECT_EQ(c.refused.size(), 1u);

  s.driver_features = feature::kVersion1;
  s.writeStatus(status::kFeaturesOk, kDeviceFeatures);
  c = s.writeStatus(status::kFeaturesOk | status::kDriverOk, kDeviceFeatures);
  EXPECT_TRUE(c.activate);
  EXPECT_TRUE(s.driverOk());
  c = s.writeStatus(status::kFeaturesOk | status::kDriverOk, kDeviceFeatures);
  EXPECT_FALSE(c.activate) << "DRIVER_OK was already set";

  DriverState legacy = twoQueues();
  legacy.legacy = true;
  EXPECT_TRUE(legacy.writeStatus(status::kDriverOk, kDeviceFeatures).activate);
}

TEST(DriverState, FailedIsReportedAndNeedsResetNeverStored) {
  DriverState s = twoQueues();
  StatusChange c = s.writeStatus(status::kFailed | status::kNeedsReset, kDeviceFeatures);
  EXPECT_TRUE(c.failed);
  EXPECT_EQ(s.status, status::kFailed);
}

TEST(DriverState, ResetRestoresThePowerOnState) {
  DriverState s = twoQueues();
  s.status = status::kDriverOk;
  s.legacy = true;
  s.driver_features = 3;
  s.device_feature_select = 1;
  s.queue_select = 1;
  s.config_vector = 2;
  s.queues[0] = QueueState{64, 8, true, 0x1000, 0x2000, 0x3000, 7, 1};
  s.reset();
  EXPECT_EQ(s, twoQueues());
}

TEST(DriverState, LegacyRingsFollowTheLegacyLayout) {
  DriverState s = twoQueues();
  DriverState::placeLegacyRings(s.queues[1], 0x12);
  const QueueState& q = s.queues[1];
  EXPECT_TRUE(q.enabled);
  EXPECT_EQ(q.size, 16);
  EXPECT_EQ(q.legacy_pfn, 0x12u);
  EXPECT_EQ(q.desc, 0x12000u);
  EXPECT_EQ(q.driver, 0x12000u + 16 * 16);
  // The used ring starts on the first 4096-byte boundary after the available ring's 6 + 2*16.
  EXPECT_EQ(q.device, 0x13000u);
}

TEST(DriverState, LiveQueuesAreTheEnabledOnesValidated) {
  GuestMemory mem = makeTestMemory();
  MockDriver drv(mem, 16, 0x10000);
  DriverState s = twoQueues();
  s.driver_features = feature::kEventIdx;
  const QueueGeometry& g = drv.geometry();
  s.queues[1] = QueueState{16, 16, true, g.desc, g.avail, g.used, 0, 0};
  auto live = s.liveQueues(mem);
  ASSERT_TRUE(live) << live.error().message;
  ASSERT_EQ(live->size(), 2u);
  EXPECT_FALSE((*live)[0].has_value());
  ASSERT_TRUE((*live)[1].has_value());
  EXPECT_EQ((*live)[1]->size(), 16);

  s.queues[1].size = 12;  // not a power of two (case 12)
  auto bad = s.liveQueues(mem);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("queue 1"), std::string::npos) << bad.error().message;
  s.queues[1].size = 16;
  s.queues[1].desc = 0x10008;  // misaligned descriptor table
  EXPECT_FALSE(s.liveQueues(mem));
  s.queues[1].desc = 1ULL << 40;  // outside RAM
  EXPECT_FALSE(s.liveQueues(mem));
}

// A snapshot's copy: a driven state round-trips; a tampered one (another queue count, another
// maximum, a size that is no power of two, legacy rings away from their PFN) is refused.
TEST(DriverState, EncodesAndDecodesForTheSameDevice) {
  DriverState s = twoQueues();
  s.status = status::kAcknowledge | status::kDriver | status::kFeaturesOk | status::kDriverOk;
  s.driver_features = feature::kVersion1 | feature::kEventIdx;
  s.queue_select = 1;
  s.config_vector = 0;
  s.queues[0] = QueueState{64, 32, true, 0x1000, 0x2000, 0x3000, 0, 1};
  const uint16_t sizes[] = {64, 16};
  StateWriter w;
  s.encode(w);
  auto bytes = w.take();
  StateReader r(bytes, "PCID 1");
  DriverState back = DriverState::decode(r, sizes);
  ASSERT_TRUE(r.finish().ok()) << r.finish().error().message;
  EXPECT_EQ(back, s);

  const uint16_t three[] = {64, 16, 16};
  StateReader other(bytes, "PCID 1");
  DriverState::decode(other, three);
  EXPECT_NE(other.finish().error().message.find("the device has 3 queues"), std::string::npos);
  const uint16_t bigger[] = {128, 16};
  StateReader max(bytes, "PCID 1");
  DriverState::decode(max, bigger);
  EXPECT_NE(max.finish().error().message.find("the device's is 128"), std::string::npos);

  DriverState odd = s;
  odd.queues[0].size = 48;
  StateWriter wo;
  odd.encode(wo);
  auto odd_bytes = wo.take();
  StateReader ro(odd_bytes, "PCID 1");
  DriverState::decode(ro, sizes);
  EXPECT_NE(ro.finish().error().message.find("not a power of two up to 64"), std::string::npos);

  DriverState legacy = twoQueues();
  legacy.legacy = true;
  DriverState::placeLegacyRings(legacy.queues[0], 0x40);
  StateWriter wl;
  legacy.encode(wl);
  auto legacy_bytes = wl.take();
  StateReader rl(legacy_bytes, "PCID 1");
  EXPECT_EQ(DriverState::decode(rl, sizes), legacy);
  EXPECT_TRUE(rl.finish().ok());
  legacy.queues[0].device += 4096;  // the used ring moved away from where the PFN puts it
  StateWriter wm;
  legacy.encode(wm);
  auto moved = wm.take();
  StateReader rm(moved, "PCID 1");
  DriverState::decode(rm, sizes);
  EXPECT_NE(rm.finish().error().message.find("where its legacy PFN does not put them"),
            std::string::npos);
}

}  // namespace
}  // namespace ember::virtio
