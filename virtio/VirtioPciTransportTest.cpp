// VirtioPciTransport (device core and modern face), driven through PCI config space and the BAR
// regions with virtio-rng behind it: capabilities, status and feature negotiation, queue set-up
// and freezing, MSI-X and INTx interrupts, reset, bus mastering, the PCI-cfg access window, and
// hostile-guest cases 12, 13, 15-18, 20 and 26.
// test-labels: threaded
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "devices/VirtioBalloon.h"
#include "devices/VirtioRng.h"
#include "kvm/Log.h"
#include "virtio/VirtioPciTransport.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::virtio {
namespace {

using namespace testing;
using T = VirtioPciTransport;

constexpr uint64_t kRing = 0x10000;
constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kFeatures = feature::kVersion1;

struct RngRig {
  RngRig() : h(std::make_unique<devices::VirtioRng>()), drv(h.mem, kQueueSize, kRing) {}
  TransportHarness h;
  MockDriver drv;

  void init(uint64_t features = kFeatures) { h.modernInit(features, {drv.geometry()}); }
  // Posts one writable buffer and kicks; returns the buffer's address.
  uint64_t request(uint32_t len = 64) {
    uint64_t buf = drv.alloc(len);
    drv.post({{buf, len, true}});
    h.kickModern(0);
    return buf;
  }
};

bool allZero(const std::vector<uint8_t>& v) {
  for (uint8_t b : v) {
    if (b != 0) return false;
  }
  return true;
}

// ---- identity, capabilities, BARs ----

TEST(VirtioPciTransport, IdentityAndBars) {
  RngRig r;
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kVendorId, 4), 0x10051af4u);  // transitional entropy device
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kSubsystemId, 2), device_type::kEntropy);
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kInterruptPin, 1), 1u);
  // BAR sizing through config space.
  r.h.cfgWrite(pci::cfg::kBar0, 4, 0xffffffff);
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kBar0, 4), 0xffffffc1u);
  r.h.cfgWrite(pci::cfg::kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kBar0 + 4, 4), 0xfffff000u);
  r.h.cfgWrite(pci::cfg::kBar0 + 16, 4, 0xffffffff);
  r.h.cfgWrite(pci::cfg::kBar0 + 20, 4, 0xffffffff);
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kBar0 + 16, 4), 0xffffc004u);
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kBar0 + 20, 4), 0xffffffffu);
  for (int bar : {2, 3}) {
    r.h.cfgWrite(static_cast<uint16_t>(pci::cfg::kBar0 + 4 * bar), 4, 0xffffffff);
    EXPECT_EQ(r.h.cfgRead(static_cast<uint16_t>(pci::cfg::kBar0 + 4 * bar), 4), 0u);
  }
}

TEST(VirtioPciTransport, CapabilityListIsWellFormed) {
  RngRig r;
  EXPECT_NE(r.h.cfgRead(pci::cfg::kStatus, 2) & pci::cfg::kStatusCapList, 0u);
  std::vector<uint8_t> types;
  std::set<uint8_t> seen;
  uint8_t at = static_cast<uint8_t>(r.h.cfgRead(pci::cfg::kCapabilitiesPtr, 1));
  while (at != 0) {
    ASSERT_GE(at, 0x40);
    ASSERT_EQ(at % 4, 0);
    ASSERT_TRUE(seen.insert(at).second) << "loop";
    uint8_t id = static_cast<uint8_t>(r.h.cfgRead(at, 1));
    if (id == pci::cfg::kCapIdMsix) {
      EXPECT_TRUE(types.empty()) << "MSI-X comes first";
      EXPECT_EQ(r.h.cfgRead(at + 2, 2) & 0x7ff, 1u);  // 2 vectors: queue 0 and config
      EXPECT_EQ(r.h.cfgRead(at + 4, 4), static_cast<uint32_t>(T::kMsixTableOffset) | T::kMsixBar);
      EXPECT_EQ(r.h.cfgRead(at + 8, 4), static_cast<uint32_t>(T::kMsixPbaOffset) | T::kMsixBar);
      types.push_back(0);
    } else {
      ASSERT_EQ(id, pci::cfg::kCapIdVendor);
      uint8_t cap_len = static_cast<uint8_t>(r.h.cfgRead(at + 2, 1));
      uint8_t type = static_cast<uint8_t>(r.h.cfgRead(at + 3, 1));
      uint8_t bar = static_cast<uint8_t>(r.h.cfgRead(at + 4, 1));
      uint32_t offset = r.h.cfgRead(at + 8, 4), length = r.h.cfgRead(at + 12, 4);
      types.push_back(type);
      switch (type) {
        case pci_cap::kCommon:
          EXPECT_EQ(cap_len, 16);
          EXPECT_EQ(bar, T::kModernBar);
          EXPECT_EQ(offset, T::kCommonOffset);
          EXPECT_EQ(length, common::kSize);
          break;
        case pci_cap::kNotify:
          EXPECT_EQ(cap_len, 20);
          EXPECT_EQ(offset, T::kNotifyOffset);
          EXPECT_GE(length, 4u);
          EXPECT_EQ(r.h.cfgRead(at + 16, 4), T::kNotifyMultiplier);
          break;
        case pci_cap::kIsr:
          EXPECT_EQ(offset, T::kIsrOffset);
          EXPECT_GE(length, 1u);
          break;
        case pci_cap::kDevice:
          EXPECT_EQ(offset, T::kDeviceOffset);
          break;
        case pci_cap::kPciCfg:
          EXPECT_EQ(cap_len, 20);
          break;
        default:
          ADD_FAILURE() << "unknown cfg_type " << int(type);
      }
      if (type != pci_cap::kPciCfg) {
        EXPECT_LE(uint64_t{offset} + length, T::kModernBarSize);
      }
    }
    at = static_cast<uint8_t>(r.h.cfgRead(at + 1, 1));
  }
  EXPECT_EQ(types, (std::vector<uint8_t>{0, pci_cap::kCommon, pci_cap::kNotify, pci_cap::kIsr,
                                         pci_cap::kDevice, pci_cap::kPciCfg}));
  // Capabilities are read-only (apart from the fields the spec makes writable).
  uint8_t common_cap = r.h.findCap(pci::cfg::kCapIdVendor, pci_cap::kCommon);
  r.h.cfgWrite(common_cap, 4, 0);
  r.h.cfgWrite(static_cast<uint16_t>(common_cap + 8), 4, 0x1234);
  EXPECT_EQ(r.h.cfgRead(common_cap + 3, 1), pci_cap::kCommon);
  EXPECT_EQ(r.h.cfgRead(common_cap + 8, 4), T::kCommonOffset);
}

// ---- a working device ----

TEST(VirtioPciTransport, ModernInitialisationAndRequest) {
  RngRig r;
  EXPECT_EQ(r.h.modernDeviceFeatures(),
            feature::kVersion1 | feature::kIndirectDesc | feature::kEventIdx);
  EXPECT_EQ(r.h.commonRead(common::kNumQueues, 2), 1u);
  r.h.commonWrite(common::kQueueSelect, 2, 0);
  EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), 256u);  // the maximum until changed
  r.init();
  EXPECT_EQ(r.h.modernStatus(),
            status::kAcknowledge | status::kDriver | status::kFeaturesOk | status::kDriverOk);
  EXPECT_FALSE(r.h.t->legacyMode());
  uint64_t buf = r.request(64);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 64u);
  EXPECT_FALSE(allZero(readBytes(r.h.mem, buf, 64)));
  // Queue registers read back as programmed, in any access width.
  EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), kQueueSize);
  EXPECT_EQ(r.h.commonRead(common::kQueueDesc, 8), r.drv.geometry().desc);
  EXPECT_EQ(r.h.commonRead(common::kQueueDriver, 4), r.drv.geometry().avail);
  EXPECT_EQ(r.h.commonRead(common::kQueueDevice + 4, 4), 0u);
  EXPECT_EQ(r.h.commonRead(common::kQueueEnable, 2), 1u);
  EXPECT_EQ(r.h.commonRead(common::kQueueNotifyOff, 2), 0u);
  EXPECT_EQ(r.h.commonRead(common::kQueueSize + 1, 1), 0u);  // odd byte of a field
}

TEST(VirtioPciTransport, IndirectAndMultiDescriptorRequests) {
  RngRig r;
  r.init(kFeatures | feature::kIndirectDesc);
  uint64_t a = r.drv.alloc(100), b = r.drv.alloc(28), table = r.drv.alloc(64);
  r.drv.postIndirect({{a, 100, true}, {b, 28, true}}, table);
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 128u);
  // Multi-descriptor direct chain with a readable part first (ignored by the entropy device).
  uint64_t c = r.drv.alloc(16), d = r.drv.alloc(32), e = r.drv.alloc(32);
  r.drv.post({{c, 16, false}, {d, 32, true}, {e, 32, true}});
  r.h.kickModern(0);
  used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 64u);
  EXPECT_TRUE(allZero(readBytes(r.h.mem, c, 16))) << "device-readable buffer was written";
}

TEST(VirtioPciTransport, MsixInterruptsPerQueueAndConfig) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.programVector(0);
  r.h.programVector(1);
  r.h.modernNegotiate(kFeatures);  // (begins with a reset, which forgets vectors)
  r.h.commonWrite(common::kMsixConfig, 2, 1);
  r.h.modernSetupQueue(0, r.drv.geometry());
  r.h.commonWrite(common::kQueueMsixVector, 2, 0);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), 0u);
  EXPECT_EQ(r.h.commonRead(common::kMsixConfig, 2), 1u);
  r.h.modernDriverOk();
  r.request();
  EXPECT_EQ(r.h.msi->fired(), std::vector<uint16_t>{0});
  ASSERT_FALSE(r.h.msi->routes().empty());
  EXPECT_EQ(r.h.msi->routes().back().address, 0xfee00000u);
  EXPECT_EQ(r.h.msi->routes().back().data, 0x40u);
  EXPECT_FALSE(r.h.intx->level()) << "INTx is not used while MSI-X is on";
  EXPECT_EQ(r.h.modernRead(T::kIsrOffset, 1), 0u);
  // The driver asked for no interrupt: none.
  r.drv.setAvailFlags(kAvailNoInterrupt);
  r.request();
  EXPECT_EQ(r.h.msi->fired().size(), 1u);
  EXPECT_EQ(r.drv.pendingUsed(), 2);
}

TEST(VirtioPciTransport, MsixFunctionMaskHoldsQueueInterruptsPending) {
  RngRig r;
  r.h.programVector(0);
  r.h.cfgWrite(static_cast<uint16_t>(r.h.msix_cap + 2), 2, 0xffff);
  uint32_t ctrl = r.h.cfgRead(static_cast<uint16_t>(r.h.msix_cap + 2), 2);
  EXPECT_EQ(ctrl & 0x7ff, 1u) << "the table size is read-only";
  EXPECT_EQ(ctrl & 0xc000, 0xc000u);
  EXPECT_EQ(ctrl & 0x3800, 0u) << "reserved bits stay zero";
  r.h.modernNegotiate(kFeatures);
  r.h.modernSetupQueue(0, r.drv.geometry());
  r.h.commonWrite(common::kQueueMsixVector, 2, 0);
  r.h.modernDriverOk();
  r.request();
  EXPECT_TRUE(r.h.msi->fired().empty());
  EXPECT_EQ(r.h.barRead(T::kMsixBar, T::kMsixPbaOffset, 8), 0x1u) << "vector 0 pending";
  r.h.enableMsix(true);  // function mask off
  EXPECT_EQ(r.h.msi->fired(), std::vector<uint16_t>{0});
  EXPECT_EQ(r.h.barRead(T::kMsixBar, T::kMsixPbaOffset, 8), 0u);
  // Masking the vector itself does the same.
  r.h.barWrite(T::kMsixBar, T::kMsixTableOffset + 12, 4, 1);
  r.request();
  EXPECT_EQ(r.h.msi->fired().size(), 1u);
  r.h.barWrite(T::kMsixBar, T::kMsixTableOffset + 12, 4, 0);
  EXPECT_EQ(r.h.msi->fired().size(), 2u);
}

TEST(VirtioPciTransport, EventIdxSuppressesInterruptsEndToEnd) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.programVector(0);
  r.h.modernNegotiate(kFeatures | feature::kEventIdx);
  r.h.modernSetupQueue(0, r.drv.geometry());
  r.h.commonWrite(common::kQueueMsixVector, 2, 0);
  r.h.modernDriverOk();
  r.drv.setUsedEvent(0);
  r.request();
  EXPECT_EQ(r.h.msi->firedCount(0), 1u);
  EXPECT_EQ(r.drv.availEvent(), 1) << "the device asks for a kick at the next buffer";
  r.request();  // used_event 0 already passed
  EXPECT_EQ(r.h.msi->firedCount(0), 1u);
  r.drv.setUsedEvent(2);
  r.request();  // used idx 2 -> 3 passes used_event 2
  EXPECT_EQ(r.h.msi->firedCount(0), 2u);
  EXPECT_EQ(r.drv.availEvent(), 3);
}

TEST(VirtioPciTransport, IsrReadToClearAndIntxLevel) {
  RngRig r;
  r.init();
  EXPECT_FALSE(r.h.intx->level());
  r.request();
  EXPECT_TRUE(r.h.intx->level());
  EXPECT_NE(r.h.cfgRead(pci::cfg::kStatus, 2) & pci::cfg::kStatusInterrupt, 0u);
  EXPECT_EQ(r.h.modernRead(T::kIsrOffset, 1), kIsrQueue);
  EXPECT_FALSE(r.h.intx->level());
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kStatus, 2) & pci::cfg::kStatusInterrupt, 0u);
  EXPECT_EQ(r.h.modernRead(T::kIsrOffset, 1), 0u);
  // INTx disable in the command register holds the line low; the ISR still says why.
  r.h.setCommand(pci::cfg::kCommandIntxDisable);
  r.request();
  EXPECT_FALSE(r.h.intx->level());
  r.h.setCommand(0);
  EXPECT_TRUE(r.h.intx->level());
  EXPECT_EQ(r.h.modernRead(T::kIsrOffset, 4), kIsrQueue);
  EXPECT_FALSE(r.h.intx->level());
}

TEST(VirtioPciTransport, StatusBitsCannotBeClearedWithoutReset) {
  RngRig r;
  r.init();
  log::ScopedLogCapture logs;
  r.h.commonWrite(common::kDeviceStatus, 1, status::kAcknowledge);
  EXPECT_EQ(r.h.modernStatus() & status::kDriverOk, status::kDriverOk);
  EXPECT_TRUE(logs.contains("without a reset"));
  // The driver cannot set NEEDS_RESET itself.
  r.h.commonWrite(common::kDeviceStatus, 1, 0x4f);
  EXPECT_EQ(r.h.modernStatus() & status::kNeedsReset, 0);
}

TEST(VirtioPciTransport, DriverOkWithoutFeaturesOkIsIgnoredOnModern) {
  RngRig r;
  log::ScopedLogCapture logs;
  r.h.commonWrite(common::kDeviceStatus, 1, status::kAcknowledge | status::kDriver);
  r.h.modernSetupQueue(0, r.drv.geometry());
  r.h.commonWrite(common::kDeviceStatus, 1,
                  status::kAcknowledge | status::kDriver | status::kDriverOk);
  EXPECT_EQ(r.h.modernStatus() & status::kDriverOk, 0);
  EXPECT_TRUE(logs.contains("DRIVER_OK without FEATURES_OK"));
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 0);
}

TEST(VirtioPciTransport, FailedStopsTheDevice) {
  RngRig r;
  r.init();
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
  r.h.commonWrite(common::kDeviceStatus, 1, r.h.modernStatus() | status::kFailed);
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
}

TEST(VirtioPciTransport, ResetForgetsEverythingAndStopsTheDevice) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.programVector(0);
  r.init(kFeatures | feature::kEventIdx);
  r.h.commonWrite(common::kQueueMsixVector, 2, 0);
  r.h.commonWrite(common::kMsixConfig, 2, 1);
  r.request();
  ASSERT_EQ(r.drv.usedIdx(), 1);
  r.h.commonWrite(common::kDeviceStatus, 1, 0);
  EXPECT_EQ(r.h.modernStatus(), 0);
  EXPECT_EQ(r.h.commonRead(common::kMsixConfig, 2), kNoVector);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), kNoVector);
  EXPECT_EQ(r.h.commonRead(common::kQueueEnable, 2), 0u);
  EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), 256u);
  EXPECT_EQ(r.h.commonRead(common::kQueueDesc, 8), 0u);
  r.h.commonWrite(common::kDriverFeatureSelect, 4, 1);
  EXPECT_EQ(r.h.commonRead(common::kDriverFeature, 4), 0u);
  r.request();  // a kick after reset touches nothing
  EXPECT_EQ(r.drv.usedIdx(), 1);
  EXPECT_TRUE(r.h.t->bar(T::kMsixBar).region != nullptr);
  EXPECT_TRUE(r.h.msi->firedCount(0) == 1);
  // Re-initialisation from scratch works (fresh rings: indices start at zero again).
  MockDriver again(r.h.mem, kQueueSize, 0x60000);
  r.h.modernInit(kFeatures, {again.geometry()});
  uint64_t buf = again.alloc(32);
  again.post({{buf, 32, true}});
  r.h.kickModern(0);
  EXPECT_EQ(again.usedIdx(), 1);
}

TEST(VirtioPciTransport, ConfigGenerationCountsConfigChanges) {
  RngRig r;
  uint8_t gen = static_cast<uint8_t>(r.h.commonRead(common::kConfigGeneration, 1));
  EXPECT_EQ(r.h.commonRead(common::kConfigGeneration, 1), gen) << "stable without changes";
  // A configuration change (here: the device entering NEEDS_RESET) moves the generation and
  // raises the config interrupt.
  r.h.modernNegotiate(kFeatures);
  QueueGeometry bad = r.drv.geometry();
  bad.size = 3;
  r.h.modernSetupQueue(0, bad);
  r.h.modernDriverOk();
  EXPECT_NE(r.h.commonRead(common::kConfigGeneration, 1), gen);
  EXPECT_EQ(r.h.modernRead(T::kIsrOffset, 1), kIsrConfig);
}

TEST(VirtioPciTransport, ConcurrentKicksResetsAndRegisterAccessesAreRaceFree) {
  // Two vCPUs of a hostile guest: one kicks, reads the ISR and reprograms MSI-X without pause,
  // the other resets and re-initialises the device and posts buffers. Nothing may crash, hang or
  // race (run under TSan), and the device works afterwards.
  RngRig r;
  r.h.programVector(0);
  std::atomic<bool> stop{false};
  std::thread vcpu1([&] {
    uint32_t i = 0;
    while (!stop) {
      r.h.kickModern(0);
      (void)r.h.modernRead(T::kIsrOffset, 1);
      (void)r.h.commonRead(common::kQueueMsixVector, 2);
      r.h.commonWrite(common::kQueueMsixVector, 2, i % 3 == 0 ? kNoVector : 0);
      r.h.enableMsix(i % 5 != 0);
      ++i;
    }
  });
  for (int round = 0; round < 200; ++round) {
    // As a driver does (3.1.1), reset before rewriting the rings: the device may be using the
    // previous round's rings until then, and TSan would rightly see the rewrite race with it.
    r.h.commonWrite(common::kDeviceStatus, 1, 0);
    MockDriver drv(r.h.mem, kQueueSize, kRing);
    r.h.modernInit(kFeatures | feature::kEventIdx, {drv.geometry()});
    for (int i = 0; i < 4; ++i) {
      uint64_t buf = drv.alloc(16);
      drv.post({{buf, 16, true}});
    }
    (void)r.h.modernStatus();
  }
  stop = true;
  vcpu1.join();
  MockDriver drv(r.h.mem, kQueueSize, kRing);
  r.h.modernInit(kFeatures, {drv.geometry()});
  uint64_t buf = drv.alloc(16);
  drv.post({{buf, 16, true}});
  r.h.kickModern(0);
  EXPECT_EQ(drv.usedIdx(), 1);
  EXPECT_EQ(r.h.modernStatus() & status::kNeedsReset, 0);
}

// ---- hostile guests ----

TEST(Hostile, Case12_ActivationRefusedSetsNeedsReset) {
  struct Bad {
    const char* what;
    void (*change)(QueueGeometry&);
  } cases[] = {
      {"size 0", [](QueueGeometry& g) { g.size = 0; }},
      {"size not a power of two", [](QueueGeometry& g) { g.size = 12; }},
      {"size above the maximum", [](QueueGeometry& g) { g.size = 512; }},
      {"misaligned descriptor table", [](QueueGeometry& g) { g.desc += 4; }},
      {"misaligned available ring", [](QueueGeometry& g) { g.avail += 1; }},
      {"misaligned used ring", [](QueueGeometry& g) { g.used += 2; }},
      {"used ring in the hole", [](QueueGeometry& g) { g.used = kHoleStart; }},
      {"descriptor table past the end of RAM", [](QueueGeometry& g) { g.desc = kRegion2End - 16; }},
      {"descriptor table above 4 GiB", [](QueueGeometry& g) { g.desc = 1ULL << 40; }},
  };
  for (const auto& c : cases) {
    RngRig r;
    log::ScopedLogCapture logs;
    QueueGeometry g = r.drv.geometry();
    c.change(g);
    r.h.modernNegotiate(kFeatures);
    r.h.modernSetupQueue(0, g);
    r.h.modernDriverOk();
    EXPECT_NE(r.h.modernStatus() & status::kNeedsReset, 0) << c.what;
    EXPECT_TRUE(logs.contains("virtio-rng: queue 0:"))
        << c.what << ": " << ::testing::PrintToString(logs.lines());
    EXPECT_TRUE(r.h.intx->level()) << c.what << ": the config interrupt is raised";
    // The device does not run: a kick does nothing.
    r.request();
    EXPECT_EQ(r.drv.usedIdx(), 0) << c.what;
    // A reset clears NEEDS_RESET and a correct set-up then works.
    r.h.commonWrite(common::kDeviceStatus, 1, 0);
    EXPECT_EQ(r.h.modernStatus(), 0) << c.what;
    MockDriver fresh(r.h.mem, kQueueSize, 0x60000);
    r.h.modernInit(kFeatures, {fresh.geometry()});
    uint64_t buf = fresh.alloc(8);
    fresh.post({{buf, 8, true}});
    r.h.kickModern(0);
    EXPECT_EQ(fresh.usedIdx(), 1) << c.what;
  }
}

TEST(Hostile, Case13_QueueRegistersFrozenAfterDriverOk) {
  RngRig r;
  r.init();
  QueueGeometry g = r.drv.geometry();
  r.h.commonWrite(common::kQueueSelect, 2, 0);
  r.h.commonWrite(common::kQueueSize, 2, 4);
  r.h.commonWrite(common::kQueueDesc, 8, 0x90000);
  r.h.commonWrite(common::kQueueDesc, 4, 0x90000);
  r.h.commonWrite(common::kQueueDesc + 4, 4, 0x1);
  r.h.commonWrite(common::kQueueDriver, 4, kHoleStart);
  r.h.commonWrite(common::kQueueDevice, 8, kHoleStart);
  r.h.commonWrite(common::kQueueEnable, 2, 0);
  EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), kQueueSize);
  EXPECT_EQ(r.h.commonRead(common::kQueueDesc, 8), g.desc);
  EXPECT_EQ(r.h.commonRead(common::kQueueDriver, 8), g.avail);
  EXPECT_EQ(r.h.commonRead(common::kQueueDevice, 8), g.used);
  EXPECT_EQ(r.h.commonRead(common::kQueueEnable, 2), 1u);
  // Feature bits are frozen too once FEATURES_OK is set.
  r.h.commonWrite(common::kDriverFeatureSelect, 4, 0);
  r.h.commonWrite(common::kDriverFeature, 4, 0xffffffff);
  EXPECT_EQ(r.h.commonRead(common::kDriverFeature, 4), 0u);
  // The queue still runs where it was activated.
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
  EXPECT_EQ(r.h.modernStatus() & status::kNeedsReset, 0);
}

TEST(Hostile, Case15_BrokenChainReachesUsedRingAndSetsNeedsReset) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.programVector(1);
  r.init();
  r.h.commonWrite(common::kMsixConfig, 2, 1);
  uint64_t buf = r.drv.alloc(16);
  r.drv.writeDesc(5, buf, 16, desc::kWrite | desc::kNext, 6);
  r.drv.writeDesc(6, buf, 16, desc::kWrite | desc::kNext, 5);  // a loop
  r.drv.publish(5);
  log::ScopedLogCapture logs;
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used) << "the broken chain must be returned";
  EXPECT_EQ(used->id, 5u);
  EXPECT_EQ(used->len, 0u);
  EXPECT_NE(r.h.modernStatus() & status::kNeedsReset, 0);
  EXPECT_TRUE(logs.contains("virtio-rng:")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(logs.contains("device needs reset"));
  EXPECT_EQ(r.h.msi->firedCount(1), 1u) << "config interrupt";
  // No more processing until the driver resets the device.
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
}

TEST(Hostile, Case16_QueueSelectOutOfRangeModern) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.commonWrite(common::kDeviceStatus, 1, status::kAcknowledge | status::kDriver);
  for (uint16_t sel : {uint16_t{1}, uint16_t{0x100}, uint16_t{0xffff}}) {
    r.h.commonWrite(common::kQueueSelect, 2, sel);
    EXPECT_EQ(r.h.commonRead(common::kQueueSelect, 2), sel);
    EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), 0u);
    EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), kNoVector);
    EXPECT_EQ(r.h.commonRead(common::kQueueEnable, 2), 0u);
    EXPECT_EQ(r.h.commonRead(common::kQueueDesc, 8), 0u);
    EXPECT_EQ(r.h.commonRead(common::kQueueDevice, 8), 0u);
    r.h.commonWrite(common::kQueueSize, 2, 8);
    r.h.commonWrite(common::kQueueMsixVector, 2, 0);
    r.h.commonWrite(common::kQueueEnable, 2, 1);
    r.h.commonWrite(common::kQueueDesc, 8, 0x5000);
    r.h.commonWrite(common::kQueueDriver, 4, 0x6000);
    r.h.commonWrite(common::kQueueDriver + 4, 4, 0x1);
    r.h.commonWrite(common::kQueueDevice, 8, 0x7000);
    EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), 0u);
    EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), kNoVector);
  }
  // Queue 0 was not touched by any of it.
  r.h.commonWrite(common::kQueueSelect, 2, 0);
  EXPECT_EQ(r.h.commonRead(common::kQueueSize, 2), 256u);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), kNoVector);
  EXPECT_EQ(r.h.commonRead(common::kQueueEnable, 2), 0u);
  EXPECT_EQ(r.h.commonRead(common::kQueueDesc, 8), 0u);
}

TEST(Hostile, Case17_VectorOutsideTableReadsNoVectorModern) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.commonWrite(common::kMsixConfig, 2, 2);  // the table has vectors 0 and 1
  EXPECT_EQ(r.h.commonRead(common::kMsixConfig, 2), kNoVector);
  r.h.commonWrite(common::kMsixConfig, 2, 0x7fff);
  EXPECT_EQ(r.h.commonRead(common::kMsixConfig, 2), kNoVector);
  r.h.commonWrite(common::kMsixConfig, 2, 1);
  EXPECT_EQ(r.h.commonRead(common::kMsixConfig, 2), 1u);
  r.h.commonWrite(common::kQueueSelect, 2, 0);
  r.h.commonWrite(common::kQueueMsixVector, 2, 5);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), kNoVector);
  r.h.commonWrite(common::kQueueMsixVector, 2, 0);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), 0u);
  r.h.commonWrite(common::kQueueMsixVector, 2, kNoVector);
  EXPECT_EQ(r.h.commonRead(common::kQueueMsixVector, 2), kNoVector);
}

TEST(Hostile, Case17_NoVectorMeansNoInterrupt) {
  RngRig r;
  r.h.enableMsix(true);
  r.h.programVector(0);
  r.h.programVector(1);
  r.init();  // queue and config vectors left at NO_VECTOR
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
  EXPECT_TRUE(r.h.msi->fired().empty());
  EXPECT_FALSE(r.h.intx->level());
  EXPECT_EQ(r.h.modernRead(T::kIsrOffset, 1), 0u);
}

TEST(Hostile, Case18_NotifyForMissingQueueModern) {
  RngRig r;
  r.init();
  log::ScopedLogCapture logs;
  r.h.modernWrite(T::kNotifyOffset + T::kNotifyMultiplier * 1, 2, 1);
  EXPECT_TRUE(logs.contains("notify for queue 1 of 1")) << ::testing::PrintToString(logs.lines());
  r.h.modernWrite(T::kModernBarSize - 4, 4, 0xffff);  // the last notify address in the BAR
  EXPECT_TRUE(logs.contains("notify for queue 1023 of 1"));
  r.h.modernWrite(T::kNotifyOffset + 2, 2, 0);  // not a notify address: ignored
  r.h.modernWrite(T::kNotifyOffset + 1, 1, 0);
  EXPECT_EQ(r.drv.usedIdx(), 0);
  EXPECT_EQ(r.h.modernStatus() & status::kNeedsReset, 0);
  r.request();  // queue 0 still works
  EXPECT_EQ(r.drv.usedIdx(), 1);
}

TEST(Hostile, Case18_NotifyBeforeActivationIgnored) {
  RngRig r;
  uint64_t buf = r.drv.alloc(16);
  r.drv.post({{buf, 16, true}});
  r.h.kickModern(0);
  r.h.kickModern(7);
  EXPECT_EQ(r.drv.usedIdx(), 0);
  // Buffers queued before DRIVER_OK are processed at activation.
  r.init();
  EXPECT_EQ(r.drv.usedIdx(), 1);
}

TEST(Hostile, Case20_FeaturesOkWithUnofferedFeaturesDoesNotStick) {
  RngRig r;
  log::ScopedLogCapture logs;
  r.h.modernNegotiate(kFeatures | 1 /* VIRTIO_BLK_F_BARRIER-like bit 0: not offered */);
  EXPECT_EQ(r.h.modernStatus() & status::kFeaturesOk, 0);
  EXPECT_TRUE(logs.contains("FEATURES_OK refused")) << ::testing::PrintToString(logs.lines());
  r.h.modernNegotiate(kFeatures | (1ULL << 40));
  EXPECT_EQ(r.h.modernStatus() & status::kFeaturesOk, 0);
  // Offered features only: it sticks.
  r.h.modernNegotiate(kFeatures | feature::kEventIdx);
  EXPECT_EQ(r.h.modernStatus() & status::kFeaturesOk, status::kFeaturesOk);
  // Feature selectors beyond the two words read zero and write nothing.
  r.h.commonWrite(common::kDeviceFeatureSelect, 4, 2);
  EXPECT_EQ(r.h.commonRead(common::kDeviceFeature, 4), 0u);
  r.h.commonWrite(common::kDeviceFeatureSelect, 4, 0xffffffff);
  EXPECT_EQ(r.h.commonRead(common::kDeviceFeature, 4), 0u);
}

TEST(Hostile, Case20_Version1RequiredOnModernFace) {
  RngRig r;
  log::ScopedLogCapture logs;
  r.h.modernNegotiate(feature::kIndirectDesc);
  EXPECT_EQ(r.h.modernStatus() & status::kFeaturesOk, 0);
  EXPECT_TRUE(logs.contains("lack VERSION_1")) << ::testing::PrintToString(logs.lines());
  r.h.modernSetupQueue(0, r.drv.geometry());
  r.h.commonWrite(common::kDeviceStatus, 1,
                  status::kAcknowledge | status::kDriver | status::kDriverOk);
  EXPECT_EQ(r.h.modernStatus() & status::kDriverOk, 0);
}

TEST(Hostile, Case26_BusMasterDisabledWhileDriverOkStopsProcessing) {
  RngRig r;
  r.h.setCommand(pci::cfg::kCommandMemory | pci::cfg::kCommandBusMaster);
  r.init();
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
  log::ScopedLogCapture logs;
  r.h.setCommand(pci::cfg::kCommandMemory);
  EXPECT_TRUE(logs.contains("bus mastering disabled while DRIVER_OK"))
      << ::testing::PrintToString(logs.lines());
  uint64_t buf = r.request(32);
  r.h.kickModern(0);
  EXPECT_EQ(r.drv.usedIdx(), 1) << "no DMA while bus mastering is off";
  EXPECT_TRUE(allZero(readBytes(r.h.mem, buf, 32)));
  r.h.setCommand(pci::cfg::kCommandMemory | pci::cfg::kCommandBusMaster);
  EXPECT_EQ(r.drv.usedIdx(), 2) << "the deferred kick runs when bus mastering is back";
  EXPECT_FALSE(allZero(readBytes(r.h.mem, buf, 32)));
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 3);
}

TEST(Hostile, Case26_DriverThatNeverEnablesBusMasteringStillWorks) {
  RngRig r;
  r.h.setCommand(pci::cfg::kCommandMemory);
  r.init();
  r.request();
  EXPECT_EQ(r.drv.usedIdx(), 1);
}

// ---- 4.1.4.9 PCI configuration access capability ----

struct CfgWindow {
  TransportHarness& h;
  uint8_t cap;
  void point(uint8_t bar, uint32_t offset, uint32_t length) {
    h.cfgWrite(static_cast<uint16_t>(cap + 4), 1, bar);
    h.cfgWrite(static_cast<uint16_t>(cap + 8), 4, offset);
    h.cfgWrite(static_cast<uint16_t>(cap + 12), 4, length);
  }
  uint32_t read() { return h.cfgRead(static_cast<uint16_t>(cap + 16), 4); }
  void write(uint32_t v) { h.cfgWrite(static_cast<uint16_t>(cap + 16), 4, v); }
};

TEST(VirtioPciTransport, PciCfgCapabilityReadsThroughToBars) {
  RngRig r;
  CfgWindow w{r.h, r.h.findCap(pci::cfg::kCapIdVendor, pci_cap::kPciCfg)};
  ASSERT_NE(w.cap, 0);
  w.point(T::kModernBar, common::kNumQueues, 2);
  EXPECT_EQ(r.h.cfgRead(static_cast<uint16_t>(w.cap + 4), 1), T::kModernBar);
  EXPECT_EQ(r.h.cfgRead(static_cast<uint16_t>(w.cap + 8), 4), common::kNumQueues);
  EXPECT_EQ(w.read() & 0xffff, 1u);
  w.point(T::kModernBar, common::kQueueSize, 2);
  EXPECT_EQ(w.read() & 0xffff, 256u);
  w.point(T::kLegacyBar, legacy::kQueueSize, 2);
  EXPECT_EQ(w.read() & 0xffff, 256u);
  w.point(T::kLegacyBar, legacy::kHostFeatures, 4);
  EXPECT_EQ(w.read(), static_cast<uint32_t>(feature::kIndirectDesc | feature::kEventIdx));
  // Invalid windows read zero and touch nothing.
  w.point(T::kModernBar, common::kQueueSize, 3);
  EXPECT_EQ(w.read(), 0u);
  w.point(2, 0, 4);  // no BAR 2
  EXPECT_EQ(w.read(), 0u);
  w.point(9, 0, 4);
  EXPECT_EQ(w.read(), 0u);
  w.point(T::kModernBar, static_cast<uint32_t>(T::kModernBarSize), 4);
  EXPECT_EQ(w.read(), 0u);
  w.point(T::kModernBar, static_cast<uint32_t>(T::kModernBarSize - 2), 4);
  EXPECT_EQ(w.read(), 0u);
  w.point(T::kModernBar, 0xfffffffe, 4);
  EXPECT_EQ(w.read(), 0u);
}

TEST(VirtioPciTransport, PciCfgCapabilityWritesThroughToBars) {
  RngRig r;
  CfgWindow w{r.h, r.h.findCap(pci::cfg::kCapIdVendor, pci_cap::kPciCfg)};
  ASSERT_NE(w.cap, 0);
  w.point(T::kModernBar, common::kDeviceStatus, 1);
  w.write(status::kAcknowledge);
  EXPECT_EQ(r.h.modernStatus(), status::kAcknowledge);
  w.write(status::kAcknowledge | status::kDriver);
  EXPECT_EQ(r.h.modernStatus(), status::kAcknowledge | status::kDriver);
  w.point(T::kModernBar, common::kQueueSelect, 2);
  w.write(0xffff);
  EXPECT_EQ(r.h.commonRead(common::kQueueSelect, 2), 0xffffu);
  // Invalid windows write nothing.
  w.point(T::kModernBar, common::kDeviceStatus, 3);
  w.write(0);
  EXPECT_EQ(r.h.modernStatus(), status::kAcknowledge | status::kDriver);
}

// ---- snapshot (issue 13) ----

// Every byte of A's RAM into B's (the two rigs have the same layout): what a restore's memory
// file gives the new machine.
void copyRam(const GuestMemory& a, const GuestMemory& b) {
  for (const auto& r : a.regions()) {
    std::vector<uint8_t> bytes(r.size);
    ASSERT_TRUE(a.read(r.start, bytes).ok());
    ASSERT_TRUE(b.write(r.start, bytes).ok());
  }
}

std::vector<uint8_t> saved(VirtioPciTransport& t) {
  StateWriter w;
  auto r = t.saveState(w);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return w.take();
}

Result<void> loaded(VirtioPciTransport& t, const std::vector<uint8_t>& bytes) {
  StateReader r(bytes, "test");
  return t.loadState(r);
}

// A live device's state (the driver's, the MSI-X table, the queue's positions after three
// requests) restored into a new transport over a copy of its RAM saves to the same bytes, and
// the restored device serves the driver's next request where the first stopped.
TEST(VirtioPciTransport, SavedStateRestoresIntoAnotherTransport) {
  RngRig a;
  a.h.enableMsix(true);
  a.h.programVector(0);
  a.h.programVector(1);
  a.h.commonWrite(common::kMsixConfig, 2, 0);
  a.init();
  a.h.commonWrite(common::kQueueSelect, 2, 0);
  a.h.commonWrite(common::kQueueMsixVector, 2, 1);
  for (int i = 0; i < 3; ++i) a.request();
  ASSERT_EQ(a.drv.usedIdx(), 3);
  auto bytes = saved(*a.h.t);

  RngRig b;
  copyRam(a.h.mem, b.h.mem);
  auto r = loaded(*b.h.t, bytes);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(b.h.t->driverState(), a.h.t->driverState());
  EXPECT_EQ(b.h.modernStatus(), a.h.modernStatus());
  EXPECT_TRUE(b.h.t->interrupt().msix().enabled());
  EXPECT_EQ(saved(*b.h.t), bytes);
  // The fourth request, posted in b's RAM as the driver would after the restore, is served.
  b.drv.setAvailIdx(3);  // b's driver picks up where a's left its ring
  size_t fired = b.h.msi->firedCount(1);
  b.request();
  EXPECT_EQ(b.drv.usedIdx(), 4);
  EXPECT_EQ(b.h.msi->firedCount(1), fired + 1) << "the restored queue's vector";

  // Refusals: cut short; a device that was touched already; another device's state.
  auto cut = bytes;
  cut.pop_back();
  RngRig c;
  EXPECT_FALSE(loaded(*c.h.t, cut).ok());
  EXPECT_FALSE(loaded(*b.h.t, bytes).ok()) << "restored twice";
  // A vector outside the MSI-X table (the driver's state re-encoded with it in place of the
  // saved one; the bytes after it are the saved ones).
  for (bool config : {true, false}) {
    StateReader prefix(bytes, "prefix");
    DriverState s = DriverState::decode(prefix, a.h.t->device().queueMaxSizes());
    ASSERT_TRUE(prefix.ok());
    (config ? s.config_vector : s.queues[0].vector) = 7;  // the table has 2 entries
    StateWriter w;
    s.encode(w);
    std::vector<uint8_t> tampered = w.take();
    tampered.insert(tampered.end(), bytes.begin() + static_cast<long>(prefix.offset()),
                    bytes.end());
    RngRig d;
    copyRam(a.h.mem, d.h.mem);
    auto bad = loaded(*d.h.t, tampered);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("is not in the MSI-X table"), std::string::npos)
        << bad.error().message;
    EXPECT_EQ(d.h.modernStatus(), 0) << "a refused restore changes nothing";
  }
  TransportHarness blk(std::make_unique<devices::VirtioBalloon>(0));
  auto other = loaded(*blk.t, bytes);
  ASSERT_FALSE(other.ok());
}

}  // namespace
}  // namespace ember::virtio
