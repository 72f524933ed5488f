// The two register faces as decoders over DriverState, without PCI: the legacy header
// (4.1.5.1) and the modern common configuration (4.1.4.3). Each write's effect on the state and
// what it asks of the transport; guest-chosen selectors and vectors (hostile-guest cases 13, 16,
// 17) and widths that are not a register's.
#include <gtest/gtest.h>

#include "virtio/VirtioPciFaces.h"

namespace ember::virtio {
namespace {

constexpr uint64_t kFeatures = 0x3 | feature::kEventIdx | (1ULL << 40);
const FaceContext kContext{kFeatures, /*vectors=*/3, /*msix_enabled=*/true, false, 7};

DriverState twoQueues() {
  const uint16_t sizes[] = {64, 16};
  return DriverState::forQueues(sizes);
}

using Action = FaceWrite::Action;

TEST(LegacyFace, FeaturesAreTheLow32BitsAndUnofferedOnesAreDropped) {
  DriverState s = twoQueues();
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kHostFeatures, 4),
            static_cast<uint32_t>(kFeatures));
  FaceWrite w = writeLegacyRegister(s, kContext, legacy::kGuestFeatures, 4, 0x5);
  EXPECT_TRUE(s.legacy);
  EXPECT_EQ(s.driver_features, 0x1u);
  EXPECT_NE(w.warning.find("0x4"), std::string::npos) << w.warning;
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kGuestFeatures, 4), 0x1u);
}

TEST(LegacyFace, QueuePfnPlacesTheRingsAndZeroResets) {
  DriverState s = twoQueues();
  writeLegacyRegister(s, kContext, legacy::kQueueSelect, 2, 1);
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kQueueSize, 2), 16u);
  EXPECT_EQ(writeLegacyRegister(s, kContext, legacy::kQueuePfn, 4, 0x20).action, Action::None);
  EXPECT_TRUE(s.queues[1].enabled);
  EXPECT_EQ(s.queues[1].desc, 0x20000u);
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kQueuePfn, 4), 0x20u);
  EXPECT_EQ(writeLegacyRegister(s, kContext, legacy::kQueuePfn, 4, 0).action, Action::Reset);
}

TEST(Hostile, Case13_LegacyQueuePfnFrozenAfterDriverOk) {
  DriverState s = twoQueues();
  s.legacy = true;
  s.status = status::kDriverOk;
  writeLegacyRegister(s, kContext, legacy::kQueuePfn, 4, 0x20);
  EXPECT_FALSE(s.queues[0].enabled);
}

TEST(Hostile, Case16_LegacyQueueSelectOutOfRange) {
  DriverState s = twoQueues();
  writeLegacyRegister(s, kContext, legacy::kQueueSelect, 2, 9);
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kQueueSize, 2), 0u);
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kQueuePfn, 4), 0u);
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kQueueVector, 2), kNoVector);
  writeLegacyRegister(s, kContext, legacy::kQueuePfn, 4, 0x20);
  writeLegacyRegister(s, kContext, legacy::kQueueVector, 2, 1);
  EXPECT_EQ(s, [] {
    DriverState want = twoQueues();
    want.legacy = true;
    want.queue_select = 9;
    return want;
  }());
}

TEST(Hostile, Case17_LegacyVectorsOutsideTheTableAreStoredAsNoVector) {
  DriverState s = twoQueues();
  FaceWrite w = writeLegacyRegister(s, kContext, legacy::kQueueVector, 2, 2);
  EXPECT_EQ(w.action, Action::QueueVector);
  EXPECT_EQ(w.queue, 0);
  EXPECT_EQ(s.queues[0].vector, 2);
  writeLegacyRegister(s, kContext, legacy::kQueueVector, 2, 3);
  EXPECT_EQ(s.queues[0].vector, kNoVector);
  EXPECT_EQ(writeLegacyRegister(s, kContext, legacy::kConfigVector, 2, 0x7fff).action,
            Action::ConfigVector);
  EXPECT_EQ(s.config_vector, kNoVector);
}

TEST(LegacyFace, VectorRegistersExistOnlyWithMsixEnabled) {
  DriverState s = twoQueues();
  FaceContext no_msix = kContext;
  no_msix.msix_enabled = false;
  EXPECT_EQ(writeLegacyRegister(s, no_msix, legacy::kQueueVector, 2, 1).action, Action::None);
  EXPECT_EQ(s.queues[0].vector, kNoVector);
  EXPECT_EQ(readLegacyRegister(s, no_msix, legacy::kConfigVector, 2), 0u);
  EXPECT_EQ(legacyHeaderSize(false), 20);
  EXPECT_EQ(legacyHeaderSize(true), 24);
}

TEST(LegacyFace, StatusNotifyAndWidths) {
  DriverState s = twoQueues();
  FaceWrite w = writeLegacyRegister(s, kContext, legacy::kStatus, 1, status::kAcknowledge);
  EXPECT_EQ(w.action, Action::Status);
  EXPECT_EQ(s.status, status::kAcknowledge);
  FaceContext needs_reset = kContext;
  needs_reset.needs_reset = true;
  EXPECT_EQ(readLegacyRegister(s, needs_reset, legacy::kStatus, 1),
            static_cast<uint32_t>(status::kAcknowledge | status::kNeedsReset));
  w = writeLegacyRegister(s, kContext, legacy::kQueueNotify, 2, 1);
  EXPECT_EQ(w.action, Action::Notify);
  EXPECT_EQ(w.queue, 1);
  // A register accessed at another width reads 0 and writes nothing.
  EXPECT_EQ(readLegacyRegister(s, kContext, legacy::kHostFeatures, 2), 0u);
  EXPECT_EQ(writeLegacyRegister(s, kContext, legacy::kStatus, 2, 0).action, Action::None);
  EXPECT_EQ(writeLegacyRegister(s, kContext, legacy::kQueueNotify, 4, 1).action, Action::None);
}

TEST(ModernFace, FeatureWordsThroughTheirSelectors) {
  DriverState s = twoQueues();
  writeCommonConfig(s, kContext, common::kDeviceFeatureSelect, 4, 1);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kDeviceFeature, 4), (kFeatures >> 32) | 1);
  writeCommonConfig(s, kContext, common::kDeviceFeatureSelect, 4, 2);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kDeviceFeature, 4), 0u);
  writeCommonConfig(s, kContext, common::kDriverFeatureSelect, 4, 1);
  writeCommonConfig(s, kContext, common::kDriverFeature, 4, 1);
  EXPECT_EQ(s.driver_features, feature::kVersion1);
  writeCommonConfig(s, kContext, common::kDriverFeatureSelect, 4, 5);  // no such word
  writeCommonConfig(s, kContext, common::kDriverFeature, 4, 0xffffffff);
  EXPECT_EQ(s.driver_features, feature::kVersion1);
  s.status = status::kFeaturesOk;  // fixed once FEATURES_OK is set
  writeCommonConfig(s, kContext, common::kDriverFeatureSelect, 4, 0);
  writeCommonConfig(s, kContext, common::kDriverFeature, 4, 1);
  EXPECT_EQ(s.driver_features, feature::kVersion1);
}

TEST(ModernFace, AddressesInHalvesOrWholeAndReadAtAnyWidth) {
  DriverState s = twoQueues();
  writeCommonConfig(s, kContext, common::kQueueDesc, 4, 0x11223340);
  writeCommonConfig(s, kContext, common::kQueueDesc + 4, 4, 0x5);
  writeCommonConfig(s, kContext, common::kQueueDevice, 8, 0x0000000600007000ULL);
  EXPECT_EQ(s.queues[0].desc, 0x511223340ULL);
  EXPECT_EQ(s.queues[0].device, 0x600007000ULL);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kQueueDesc, 8), 0x511223340ULL);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kQueueDesc + 1, 2), 0x2233u);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kNumQueues, 2), 2u);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kConfigGeneration, 1), 7u);
  // Bytes past the end of the structure read as zero.
  EXPECT_EQ(readCommonConfig(s, kContext, common::kSize - 2, 8), 0u);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kSize, 4), 0u);
}

TEST(Hostile, Case13_ModernQueueFieldsFrozenAfterDriverOk) {
  DriverState s = twoQueues();
  s.status = status::kDriverOk;
  writeCommonConfig(s, kContext, common::kQueueSize, 2, 8);
  writeCommonConfig(s, kContext, common::kQueueEnable, 2, 1);
  writeCommonConfig(s, kContext, common::kQueueDesc, 8, 0x1000);
  EXPECT_EQ(s.queues[0], twoQueues().queues[0]);
}

TEST(Hostile, Case16_ModernQueueSelectOutOfRange) {
  DriverState s = twoQueues();
  writeCommonConfig(s, kContext, common::kQueueSelect, 2, 2);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kQueueSize, 2), 0u);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kQueueMsixVector, 2), kNoVector);
  writeCommonConfig(s, kContext, common::kQueueSize, 2, 8);
  writeCommonConfig(s, kContext, common::kQueueEnable, 2, 1);
  writeCommonConfig(s, kContext, common::kQueueDesc, 8, 0x1000);
  EXPECT_EQ(writeCommonConfig(s, kContext, common::kQueueMsixVector, 2, 1).action, Action::None);
  DriverState want = twoQueues();
  want.queue_select = 2;
  EXPECT_EQ(s, want);
}

TEST(Hostile, Case17_ModernVectorsOutsideTheTableReadNoVector) {
  DriverState s = twoQueues();
  FaceWrite w = writeCommonConfig(s, kContext, common::kQueueMsixVector, 2, 5);
  EXPECT_EQ(w.action, Action::QueueVector);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kQueueMsixVector, 2), kNoVector);
  writeCommonConfig(s, kContext, common::kMsixConfig, 2, 2);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kMsixConfig, 2), 2u);
}

TEST(ModernFace, SizeSetBeforeEnableAndStatusThroughTheStateMachine) {
  DriverState s = twoQueues();
  writeCommonConfig(s, kContext, common::kQueueSize, 2, 32);
  writeCommonConfig(s, kContext, common::kQueueEnable, 2, 0);  // only 1 enables
  EXPECT_FALSE(s.queues[0].enabled);
  writeCommonConfig(s, kContext, common::kQueueEnable, 2, 1);
  writeCommonConfig(s, kContext, common::kQueueSize, 2, 8);  // too late: enabled
  EXPECT_EQ(s.queues[0].size, 32);
  EXPECT_TRUE(s.queues[0].enabled);
  EXPECT_EQ(readCommonConfig(s, kContext, common::kQueueNotifyOff, 2), 0u);
  FaceWrite w = writeCommonConfig(s, kContext, common::kDeviceStatus, 1, 0);
  EXPECT_EQ(w.action, Action::Status);
  EXPECT_TRUE(w.status.reset);
}

// Hostile: a driver that enables a queue before setting its addresses (4.1.4.3.2: the driver
// MUST configure the other queue fields first) has them taken until DRIVER_OK, which validates
// what they are then; from DRIVER_OK on they are fixed, so the rings validated are the rings a
// vhost backend is given and the guest cannot move them under it (docs/security.md, vhost-net).
TEST(Hostile, AddressesAreFixedFromDriverOkWhateverTheOrderOfTheEnable) {
  DriverState s = twoQueues();
  writeCommonConfig(s, kContext, common::kQueueSize, 2, 32);
  writeCommonConfig(s, kContext, common::kQueueEnable, 2, 1);
  writeCommonConfig(s, kContext, common::kQueueDesc, 8, 0x10000);
  EXPECT_EQ(s.queues[0].desc, 0x10000u) << "validated at DRIVER_OK, whenever written";
  s.status = status::kAcknowledge | status::kDriver | status::kFeaturesOk | status::kDriverOk;
  writeCommonConfig(s, kContext, common::kQueueDesc, 8, 1ULL << 40);
  writeCommonConfig(s, kContext, common::kQueueDriver, 8, 0xdead0000);
  writeCommonConfig(s, kContext, common::kQueueDevice, 8, 0xbeef0000);
  writeCommonConfig(s, kContext, common::kQueueSize, 2, 64);
  EXPECT_EQ(s.queues[0].desc, 0x10000u);
  EXPECT_EQ(s.queues[0].driver, 0u);
  EXPECT_EQ(s.queues[0].device, 0u);
  EXPECT_EQ(s.queues[0].size, 32u);
}

}  // namespace
}  // namespace ember::virtio
