// VirtioRng through the virtio-pci transport: entropy lands in device-writable buffers only, per
// request caps, straddling buffers, and the chain-level hostile-guest cases (1-11, 15) seen
// from a device: the broken chain is returned with length 0 and the device enters NEEDS_RESET.
#include <gtest/gtest.h>

#include <functional>

#include "devices/VirtioRng.h"
#include "kvm/Log.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::devices {
namespace {

using namespace virtio::testing;
namespace status = virtio::status;
namespace desc = virtio::desc;
using virtio::feature::kIndirectDesc;
using virtio::feature::kVersion1;

constexpr uint16_t kQueueSize = 16;

struct RngRig {
  RngRig() : h(std::make_unique<VirtioRng>()), drv(h.mem, kQueueSize, 0x10000) {}
  TransportHarness h;
  MockDriver drv;
  void init(uint64_t features = kVersion1 | kIndirectDesc) {
    h.modernInit(features, {drv.geometry()});
  }
  bool needsReset() { return h.modernStatus() & status::kNeedsReset; }
};

bool allZero(const std::vector<uint8_t>& v) {
  for (uint8_t b : v) {
    if (b) return false;
  }
  return true;
}

TEST(VirtioRng, FillsOnlyDeviceWritableBuffers) {
  RngRig r;
  r.init();
  uint64_t ro = r.drv.alloc(64), a = r.drv.alloc(40), b = r.drv.alloc(24);
  r.drv.post({{ro, 64, false}, {a, 40, true}, {b, 24, true}});
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 64u);
  EXPECT_TRUE(allZero(readBytes(r.h.mem, ro, 64)));
  EXPECT_FALSE(allZero(readBytes(r.h.mem, a, 40)));
  EXPECT_FALSE(allZero(readBytes(r.h.mem, b, 24)));
  // Two requests give different bytes.
  uint64_t c = r.drv.alloc(40);
  r.drv.post({{c, 40, true}});
  r.h.kickModern(0);
  EXPECT_EQ(r.drv.usedIdx(), 2);
  EXPECT_NE(readBytes(r.h.mem, c, 40), readBytes(r.h.mem, a, 40));
}

TEST(VirtioRng, CapsBytesPerRequest) {
  RngRig r;
  r.init();
  r.drv.setArena(0x40000, kRegionBoundary);
  uint64_t big = r.drv.alloc(128 * 1024);
  r.drv.post({{big, 128 * 1024, true}});
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, VirtioRng::kMaxPerRequest);
  EXPECT_TRUE(allZero(readBytes(r.h.mem, big + VirtioRng::kMaxPerRequest, 4096)))
      << "nothing past the reported length";
}

TEST(Hostile, Case10_RngBufferStraddlingTwoRegions) {
  RngRig r;
  r.init();
  uint64_t at = kRegionBoundary - 256;
  fillBytes(r.h.mem, at, 0, 512);
  r.drv.post({{at, 512, true}});
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 512u);
  EXPECT_FALSE(allZero(readBytes(r.h.mem, at, 256)));
  EXPECT_FALSE(allZero(readBytes(r.h.mem, kRegionBoundary, 256)));
}

TEST(Hostile, Case08_RngZeroLengthBufferGetsNothing) {
  RngRig r;
  r.init();
  uint64_t a = r.drv.alloc(16);
  r.drv.post({{a, 0, true}});
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 0u);
  EXPECT_FALSE(r.needsReset());
}

TEST(Hostile, Case05_GuestThatNeverConsumesCompletions) {
  RngRig r;
  r.init();
  uint64_t buf = r.drv.alloc(8);
  // Ten queues' worth of requests, the used ring never read: the device keeps serving (the used
  // ring simply wraps), holds nothing in flight and allocates nothing per request.
  for (int round = 0; round < 10; ++round) {
    for (uint16_t i = 0; i < kQueueSize; ++i) r.drv.post({{buf, 8, true}});
    r.h.kickModern(0);
  }
  EXPECT_EQ(r.drv.usedIdx(), 10 * kQueueSize);
  EXPECT_FALSE(r.needsReset());
}

// Posts a chain made broken by `setup` (writing descriptors at head 4 and beyond) and checks the
// outcome: the chain comes back with length 0, NEEDS_RESET is set with a warning, and later
// kicks are ignored until the driver resets the device.
void expectBrokenChain(const std::function<void(RngRig&)>& setup, uint64_t features,
                       const char* what) {
  SCOPED_TRACE(what);
  RngRig r;
  r.init(features);
  setup(r);
  r.drv.publish(4);
  log::ScopedLogCapture logs;
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used) << "the popped chain must reach the used ring";
  EXPECT_EQ(used->id, 4u);
  EXPECT_EQ(used->len, 0u);
  EXPECT_TRUE(r.needsReset());
  EXPECT_TRUE(logs.contains("virtio-rng: ")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(logs.contains("device needs reset"));
  EXPECT_TRUE(r.h.modernRead(virtio::VirtioPciTransport::kIsrOffset, 1) & virtio::kIsrConfig)
      << "config interrupt";
  uint64_t buf = r.drv.alloc(8);
  r.drv.post({{buf, 8, true}});
  r.h.kickModern(0);
  EXPECT_EQ(r.drv.usedIdx(), 1) << "no processing after NEEDS_RESET";
}

TEST(Hostile, Case01_LoopedChainThroughRng) {
  expectBrokenChain(
      [](RngRig& r) {
        r.drv.writeDesc(4, 0x30000, 8, desc::kWrite | desc::kNext, 5);
        r.drv.writeDesc(5, 0x30000, 8, desc::kWrite | desc::kNext, 4);
      },
      kVersion1, "loop");
}

TEST(Hostile, Case02_NextOutOfRangeThroughRng) {
  expectBrokenChain(
      [](RngRig& r) { r.drv.writeDesc(4, 0x30000, 8, desc::kWrite | desc::kNext, kQueueSize); },
      kVersion1, "next == size");
}

TEST(Hostile, Case06_BadIndirectTablesThroughRng) {
  struct Bad {
    uint64_t addr;
    uint32_t len;
    const char* what;
  } cases[] = {{0x30000, 0, "len 0"},
               {0x30000, 20, "len 20"},
               {kHoleStart, 32, "in the hole"},
               {kRegion2End - 16, 32, "past RAM"}};
  for (const auto& c : cases) {
    expectBrokenChain([&](RngRig& r) { r.drv.writeDesc(4, c.addr, c.len, desc::kIndirect, 0); },
                      kVersion1 | kIndirectDesc, c.what);
  }
}

TEST(Hostile, Case07_IndirectMisuseThroughRng) {
  expectBrokenChain(
      [](RngRig& r) {
        r.drv.writeDesc(4, 0x30000, 16, desc::kIndirect, 0);
        MockDriver::writeDescAt(r.h.mem, 0x30000, 0, 0x31000, 16, desc::kIndirect, 0);
      },
      kVersion1 | kIndirectDesc, "nested");
  expectBrokenChain(
      [](RngRig& r) {
        r.drv.writeDesc(4, 0x30000, 16, desc::kIndirect | desc::kNext, 5);
        MockDriver::writeDescAt(r.h.mem, 0x30000, 0, 0x31000, 16, desc::kWrite, 0);
        r.drv.writeDesc(5, 0x32000, 16, desc::kWrite, 0);
      },
      kVersion1 | kIndirectDesc, "INDIRECT|NEXT");
  expectBrokenChain(
      [](RngRig& r) {
        r.drv.writeDesc(4, 0x30000, 16, desc::kIndirect, 0);
        MockDriver::writeDescAt(r.h.mem, 0x30000, 0, 0x31000, 16, desc::kWrite, 0);
      },
      kVersion1, "INDIRECT not negotiated");
  expectBrokenChain(
      [](RngRig& r) {
        r.drv.writeDesc(4, 0x30000, 16 * 2 * kQueueSize, desc::kIndirect, 0);
        for (uint16_t i = 0; i < 2 * kQueueSize; ++i) {
          MockDriver::writeDescAt(r.h.mem, 0x30000, i, 0x31000, 8, desc::kWrite | desc::kNext,
                                  static_cast<uint16_t>(i + 1));
        }
      },
      kVersion1 | kIndirectDesc, "longer than the queue");
}

TEST(Hostile, Case09_BuffersOutsideRamThroughRng) {
  struct Bad {
    uint64_t addr;
    uint32_t len;
    const char* what;
  } cases[] = {{kHoleStart, 8, "hole"},
               {~0ULL - 3, 8, "2^64 wrap"},
               {0x1000, 0xffffffff, "huge length"},
               {kHighRegionEnd - 8, 16, "past 4 GiB"}};
  for (const auto& c : cases) {
    expectBrokenChain([&](RngRig& r) { r.drv.writeDesc(4, c.addr, c.len, desc::kWrite, 0); },
                      kVersion1, c.what);
  }
}

TEST(Hostile, Case09_RngFillsBufferEndingExactlyAt4GiB) {
  RngRig r;
  r.init();
  r.drv.post({{kHighRegionEnd - 64, 64, true}});
  r.h.kickModern(0);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 64u);
  EXPECT_FALSE(allZero(readBytes(r.h.mem, kHighRegionEnd - 64, 64)));
}

TEST(Hostile, Case11_ReadableAfterWritableThroughRng) {
  expectBrokenChain(
      [](RngRig& r) {
        r.drv.writeDesc(4, 0x30000, 8, desc::kWrite | desc::kNext, 5);
        r.drv.writeDesc(5, 0x31000, 8, 0, 0);
      },
      kVersion1, "readable after writable");
}

TEST(Hostile, Case03_AvailHeadOutOfRangeThroughRng) {
  RngRig r;
  r.init();
  r.drv.setAvailEntry(0, kQueueSize + 3);
  r.drv.setAvailIdx(1);
  log::ScopedLogCapture logs;
  r.h.kickModern(0);
  EXPECT_TRUE(r.needsReset());
  EXPECT_EQ(r.drv.usedIdx(), 0) << "nothing was popped, nothing to return";
  EXPECT_TRUE(logs.contains("names head 19")) << ::testing::PrintToString(logs.lines());
}

TEST(Hostile, Case04_AvailIdxFarAheadThroughRng) {
  RngRig r;
  r.init();
  r.drv.setAvailIdx(kQueueSize + 1);
  log::ScopedLogCapture logs;
  r.h.kickModern(0);
  EXPECT_TRUE(r.needsReset());
  EXPECT_EQ(r.drv.usedIdx(), 0);
  EXPECT_TRUE(logs.contains("ahead")) << ::testing::PrintToString(logs.lines());
}

TEST(VirtioRng, ActivationNeedsTheQueue) {
  RngRig r;
  log::ScopedLogCapture logs;
  r.h.modernInit(kVersion1, {});  // queue 0 never enabled
  EXPECT_TRUE(r.needsReset());
  EXPECT_TRUE(logs.contains("without its request queue"));
}

}  // namespace
}  // namespace ember::devices

namespace ember::devices {
namespace {

// A host that records what the device asked of it.
struct RecordingHost : virtio::VirtioDeviceHost {
  void queueUsed(uint16_t queue, virtio::SplitQueue&) override { used.push_back(queue); }
  void configChanged() override {}
  void needsReset(const std::string& reason) override { resets.push_back(reason); }
  bool mayProcess() const override { return true; }
  std::vector<uint16_t> used;
  std::vector<std::string> resets;
};

TEST(VirtioRng, OwnsItsQueueWhileLiveAndHandsItBackWithItsIndices) {
  GuestMemory mem = virtio::testing::makeTestMemory();
  MockDriver drv(mem, kQueueSize, 0x10000);
  auto q = virtio::SplitQueue::activate(mem, drv.geometry(), 256, false, false);
  ASSERT_TRUE(q) << q.error().message;
  virtio::QueueSet queues;
  queues.emplace_back(std::move(*q));
  RecordingHost host;
  VirtioRng rng;
  ASSERT_TRUE(rng.activate(virtio::Activation{&mem, 0, std::move(queues), &host}));
  drv.post({{drv.alloc(16), 16, true}});
  drv.post({{drv.alloc(16), 16, true}});
  rng.notify(0);
  EXPECT_EQ(drv.usedIdx(), 2);
  EXPECT_EQ(host.used, std::vector<uint16_t>{0}) << "one interrupt decision for the round";
  EXPECT_EQ(rng.counters().requests, 2u);
  EXPECT_EQ(rng.counters().bytes, 32u);

  virtio::QueueSet back = rng.reset();
  ASSERT_EQ(back.size(), 1u);
  ASSERT_TRUE(back[0].has_value());
  EXPECT_EQ(back[0]->nextAvail(), 2);
  EXPECT_EQ(back[0]->nextUsed(), 2);
  EXPECT_EQ(back[0]->inFlight(), 0u);
  EXPECT_TRUE(rng.reset().empty()) << "nothing left to hand back";
  drv.post({{drv.alloc(16), 16, true}});
  rng.notify(0);
  EXPECT_EQ(drv.usedIdx(), 2) << "a reset device takes no more buffers";
  EXPECT_TRUE(host.resets.empty());
}

TEST(VirtioRng, ActivationWithoutItsQueueIsRefused) {
  GuestMemory mem = virtio::testing::makeTestMemory();
  RecordingHost host;
  VirtioRng rng;
  auto r = rng.activate(virtio::Activation{&mem, 0, virtio::QueueSet(1), &host});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Guest);
}

}  // namespace
}  // namespace ember::devices
