// SplitQueue and drainAvailable: activation checks, the available/used ring protocol, in-flight
// bounds, EVENT_IDX interrupt suppression and notification re-arming, and 16-bit ring indices
// shared with a concurrently running driver.
// test-labels: threaded
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "virtio/QueueProcessing.h"
#include "virtio/SplitQueue.h"
#include "virtio/testing/MockDriver.h"

namespace ember::virtio {
namespace {

using namespace testing;

constexpr uint64_t kBase = 0x10000;

struct QueueRig {
  explicit QueueRig(uint16_t size = 8, bool event_idx = false, bool indirect = true)
      : driver(mem, size, kBase) {
    auto q = SplitQueue::activate(mem, driver.geometry(), 256, event_idx, indirect);
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message);
    queue.emplace(std::move(*q));
  }
  GuestMemory mem = makeTestMemory();
  MockDriver driver;
  std::optional<SplitQueue> queue;

  uint16_t postOne(uint32_t len = 64) { return driver.post({{driver.alloc(len), len, true}}); }
};

TEST(Hostile, Case12_ActivationRefusesBadGeometry) {
  GuestMemory mem = makeTestMemory();
  QueueGeometry good = MockDriver::legacyLayout(16, kBase);
  ASSERT_TRUE(SplitQueue::activate(mem, good, 256, false, false).ok());
  auto with = [&](auto change) {
    QueueGeometry g = good;
    change(g);
    return SplitQueue::activate(mem, g, 256, false, false).ok();
  };
  EXPECT_FALSE(with([](QueueGeometry& g) { g.size = 0; })) << "size 0";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.size = 3; })) << "not a power of two";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.size = 24; })) << "not a power of two";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.size = 0xffff; })) << "not a power of two";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.size = 512; })) << "above the maximum";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.size = 0x8000; })) << "above the maximum";
  EXPECT_TRUE(with([](QueueGeometry& g) { g.size = 1; })) << "size 1";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.desc += 8; })) << "descriptor table misaligned";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.avail += 1; })) << "available ring misaligned";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.used += 2; })) << "used ring misaligned";
  EXPECT_TRUE(with([](QueueGeometry& g) { g.used += 4; })) << "4-aligned used ring is fine";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.used = kHoleStart; })) << "used ring in the hole";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.avail = kHoleStart - 8; })) << "avail into the hole";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.desc = kRegion2End - 128; })) << "desc past RAM";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.desc = ~0ULL & ~15ULL; })) << "desc wraps 2^64";
  EXPECT_FALSE(with([](QueueGeometry& g) { g.used = kHighRegionEnd - 64; })) << "used past 4 GiB";
  EXPECT_TRUE(with([](QueueGeometry& g) { g.desc = kRegionBoundary - 128; }))
      << "a table across two adjacent regions is in RAM";
  // Near the end of RAM: a used ring (6 + 8 * 16 bytes) ending just inside region 2, or not.
  EXPECT_TRUE(with([](QueueGeometry& g) { g.used = kRegion2End - 136; }));
  EXPECT_FALSE(with([](QueueGeometry& g) { g.used = kRegion2End - 132; }));
}

TEST(SplitQueue, PopCollectPushRoundTrip) {
  QueueRig r;
  uint64_t hdr = r.driver.alloc(16), data = r.driver.alloc(512);
  uint16_t head = r.driver.post({{hdr, 16, false}, {data, 512, true}});
  EXPECT_TRUE(r.queue->hasAvailable());
  auto chain = r.queue->pop();
  ASSERT_TRUE(chain.ok());
  ASSERT_TRUE(chain->has_value());
  EXPECT_EQ((*chain)->head(), head);
  EXPECT_EQ(r.queue->inFlight(), 1u);
  auto bufs = collectChain(**chain);
  ASSERT_TRUE(bufs.ok());
  EXPECT_EQ(bufs->readableBytes(), 16u);
  EXPECT_EQ(bufs->writableBytes(), 512u);
  ASSERT_EQ(bufs->writable.size(), 1u);
  EXPECT_EQ(bufs->writable[0].addr, data);
  auto empty = r.queue->pop();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  EXPECT_FALSE(r.queue->hasAvailable());
  ASSERT_TRUE(r.queue->pushUsed(head, 100).ok());
  EXPECT_EQ(r.queue->inFlight(), 0u);
  auto used = r.driver.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, head);
  EXPECT_EQ(used->len, 100u);
}

// A batch added with addUsed stays invisible to the driver until publishUsed moves the used
// index past all of it at once (a mergeable receive frame, 5.1.6.4).
TEST(SplitQueue, AddedElementsAppearTogetherWhenPublished) {
  QueueRig r;
  uint16_t heads[3];
  for (auto& h : heads) h = r.postOne();
  for (uint16_t expected : heads) {
    auto c = r.queue->pop();
    ASSERT_TRUE(c.ok() && c->has_value());
    EXPECT_EQ((*c)->head(), expected);
  }
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(r.queue->addUsed(heads[i], 10 * (i + 1)).ok());
    EXPECT_EQ(r.driver.pendingUsed(), 0u) << "element " << i << " published early";
  }
  EXPECT_EQ(r.queue->inFlight(), 0u);
  ASSERT_TRUE(r.queue->publishUsed().ok());
  EXPECT_EQ(r.driver.pendingUsed(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    auto used = r.driver.popUsed();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, heads[i]);
    EXPECT_EQ(used->len, 10 * (i + 1));
  }
}

TEST(SplitQueue, IndicesWrapAt16Bits) {
  QueueRig r(4);
  uint64_t buf = r.driver.alloc(8);
  uint32_t seq = 0;
  for (uint32_t round = 0; round < 16500; ++round) {  // 66000 chains: past 65535 on both rings
    uint16_t heads[4];
    for (uint16_t& h : heads) h = r.driver.post({{buf, 8, true}});
    for (uint16_t h : heads) {
      auto chain = r.queue->pop();
      ASSERT_TRUE(chain.ok()) << "at " << seq << ": " << chain.error().message;
      ASSERT_TRUE(chain->has_value()) << "at " << seq;
      ASSERT_EQ((*chain)->head(), h);
      ASSERT_TRUE(r.queue->pushUsed(h, seq++).ok());
    }
    for (uint32_t i = seq - 4; i < seq; ++i) {
      auto used = r.driver.popUsed();
      ASSERT_TRUE(used);
      ASSERT_EQ(used->len, i);
    }
  }
  EXPECT_EQ(r.driver.usedIdx(), static_cast<uint16_t>(66000));
  EXPECT_EQ(r.driver.availIdx(), static_cast<uint16_t>(66000));
}

TEST(Hostile, Case03_AvailHeadOutOfRange) {
  for (uint16_t bad : {uint16_t{8}, uint16_t{9}, uint16_t{0xffff}}) {
    QueueRig r(8);
    r.driver.setAvailEntry(0, bad);
    r.driver.setAvailIdx(1);
    auto chain = r.queue->pop();
    EXPECT_FALSE(chain.ok()) << bad;
    EXPECT_EQ(r.queue->inFlight(), 0u);
    // It stays an error: the bad entry is never consumed or indexed with.
    EXPECT_FALSE(r.queue->pop().ok());
    EXPECT_EQ(r.driver.usedIdx(), 0);
  }
}

TEST(Hostile, Case04_AvailIdxMoreThanQueueSizeAhead) {
  QueueRig r(8);
  r.driver.setAvailIdx(9);
  auto chain = r.queue->pop();
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.error().message.find("ahead"), std::string::npos);
  EXPECT_FALSE(r.queue->pop().ok());
  EXPECT_EQ(r.queue->inFlight(), 0u);
  r.driver.setAvailIdx(0xffff);  // "behind" by one: as far ahead as it gets
  EXPECT_FALSE(r.queue->pop().ok());
  // A full queue's worth is allowed.
  r.driver.setAvailIdx(0);
  for (uint16_t i = 0; i < 8; ++i) r.postOne();
  for (uint16_t i = 0; i < 8; ++i) {
    auto c = r.queue->pop();
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->has_value());
  }
  // No chain was processed twice: the device is now level with the driver.
  auto c = r.queue->pop();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST(Hostile, Case05_InFlightCappedAtQueueSize) {
  QueueRig r(4);
  std::vector<uint16_t> heads;
  for (int i = 0; i < 4; ++i) {
    r.postOne();
    auto c = r.queue->pop();
    ASSERT_TRUE(c.ok() && c->has_value());
    heads.push_back((*c)->head());
  }
  EXPECT_EQ(r.queue->inFlight(), 4u);
  // A guest that keeps posting (here: re-posting the same descriptors) without the device having
  // completed anything gets nothing more popped.
  for (int i = 0; i < 4; ++i) r.driver.publish(heads[i]);
  auto c = r.queue->pop();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(r.queue->inFlight(), 4u);
  // drainAvailable stops without error.
  int handled = 0;
  auto d = drainAvailable(*r.queue, [&](DescriptorChain&) -> Result<void> {
    ++handled;
    return {};
  });
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(handled, 0);
  // One completion makes room for exactly one more.
  ASSERT_TRUE(r.queue->pushUsed(heads[0], 0).ok());
  c = r.queue->pop();
  ASSERT_TRUE(c.ok() && c->has_value());
  c = r.queue->pop();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST(Hostile, Case05_DrainWithHandlerThatNeverCompletesIsBounded) {
  QueueRig r(8);
  for (int i = 0; i < 8; ++i) r.postOne();
  int handled = 0;
  auto d = drainAvailable(*r.queue, [&](DescriptorChain&) -> Result<void> {
    ++handled;
    r.postOne();  // the driver keeps adding while the device works
    return {};
  });
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(handled, 8);
  EXPECT_EQ(r.queue->inFlight(), 8u);
}

TEST(SplitQueue, DrainPicksUpBuffersAddedMeanwhile) {
  QueueRig r(8, /*event_idx=*/true);
  r.postOne();
  int handled = 0;
  auto d = drainAvailable(*r.queue, [&](DescriptorChain& chain) -> Result<void> {
    if (++handled < 3) r.postOne();
    return r.queue->pushUsed(chain.head(), 0);
  });
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(handled, 3);
  EXPECT_EQ(r.driver.usedIdx(), 3);
  // avail_event tells the driver to kick at the next new buffer.
  EXPECT_EQ(r.driver.availEvent(), 3);
}

TEST(SplitQueue, DrainStopsAtTheFirstHandlerError) {
  QueueRig r(8);
  r.postOne();
  r.postOne();
  int handled = 0;
  auto d = drainAvailable(*r.queue, [&](DescriptorChain&) -> Result<void> {
    ++handled;
    return makeError(Errc::Guest, "bad");
  });
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(handled, 1);
}

TEST(SplitQueue, EventIdxUsedEventSuppressesInterrupts) {
  QueueRig r(8, /*event_idx=*/true);
  auto complete = [&] {
    r.postOne();
    auto c = r.queue->pop();
    ASSERT_TRUE(c.ok() && c->has_value());
    ASSERT_TRUE(r.queue->pushUsed((*c)->head(), 0).ok());
  };
  r.driver.setUsedEvent(0);  // interrupt when used idx passes 0
  complete();
  EXPECT_TRUE(*r.queue->shouldInterrupt());
  complete();
  EXPECT_FALSE(*r.queue->shouldInterrupt()) << "used_event 0 was already passed";
  EXPECT_FALSE(*r.queue->shouldInterrupt()) << "nothing new";
  r.driver.setUsedEvent(3);  // interrupt once entry 3 is used (idx moves past 3)
  complete();                // idx 3
  EXPECT_FALSE(*r.queue->shouldInterrupt());
  complete();  // idx 4
  EXPECT_TRUE(*r.queue->shouldInterrupt());
  // A batch that jumps over used_event still interrupts once.
  r.driver.setUsedEvent(5);
  complete();
  complete();
  complete();  // idx 7
  EXPECT_TRUE(*r.queue->shouldInterrupt());
  // The NO_INTERRUPT flag means nothing with EVENT_IDX.
  r.driver.setAvailFlags(kAvailNoInterrupt);
  r.driver.setUsedEvent(7);
  complete();
  EXPECT_TRUE(*r.queue->shouldInterrupt());
}

TEST(SplitQueue, EventIdxPublishesAvailEvent) {
  QueueRig r(8, /*event_idx=*/true);
  r.postOne();
  r.postOne();
  auto more = r.queue->armNotification();
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  EXPECT_EQ(r.driver.availEvent(), 0);
  (void)r.queue->pop();
  (void)r.queue->pop();
  more = r.queue->armNotification();
  EXPECT_FALSE(*more);
  EXPECT_EQ(r.driver.availEvent(), 2);
}

TEST(SplitQueue, NoInterruptFlagWithoutEventIdx) {
  QueueRig r(8, /*event_idx=*/false);
  r.postOne();
  auto c = r.queue->pop();
  ASSERT_TRUE(r.queue->pushUsed((*c)->head(), 0).ok());
  r.driver.setAvailFlags(kAvailNoInterrupt);
  EXPECT_FALSE(*r.queue->shouldInterrupt());
  r.driver.setAvailFlags(0);
  r.postOne();
  c = r.queue->pop();
  ASSERT_TRUE(r.queue->pushUsed((*c)->head(), 0).ok());
  EXPECT_TRUE(*r.queue->shouldInterrupt());
  EXPECT_FALSE(*r.queue->shouldInterrupt()) << "nothing new since";
  // Without EVENT_IDX the device does not write avail_event.
  r.postOne();
  (void)r.queue->pop();
  (void)r.queue->armNotification();
  EXPECT_EQ(r.driver.availEvent(), 0);
}

// A driver thread and a device thread share the rings; every index is a single 16-bit atomic
// with acquire/release ordering, so the driver's descriptor and payload writes are visible to
// the device and the device's used elements to the driver (under TSan: no data race).
TEST(Hostile, Case14_RingIndicesSharedWithAConcurrentDriver) {
  constexpr uint16_t kQueue = 16;
  constexpr uint32_t kChains = 20000;
  QueueRig r(kQueue);
  std::vector<uint64_t> bufs;
  for (uint16_t i = 0; i < kQueue; ++i) bufs.push_back(r.driver.alloc(8));
  std::atomic<bool> failed{false};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);

  std::thread device([&] {
    uint32_t done = 0;
    while (done < kChains && !failed) {
      auto c = r.queue->pop();
      if (!c.ok()) {
        ADD_FAILURE() << c.error().message;
        failed = true;
        return;
      }
      if (!c->has_value()) {
        if (std::chrono::steady_clock::now() > deadline) {
          ADD_FAILURE() << "device timed out";
          failed = true;
        }
        std::this_thread::yield();
        continue;
      }
      auto b = collectChain(**c);
      if (!b.ok() || b->readable.size() != 1) {
        ADD_FAILURE() << "bad chain";
        failed = true;
        return;
      }
      auto seq = r.mem.readObj<uint64_t>(GuestAddress(b->readable[0].addr));
      // Echo the sequence number (which the driver wrote before publishing) as the used length.
      if (!r.queue->pushUsed(b->head, static_cast<uint32_t>(*seq)).ok()) failed = true;
      ++done;
    }
  });

  uint32_t posted = 0, seen = 0;
  std::vector<uint16_t> free_heads;
  for (uint16_t i = 0; i < kQueue; ++i) free_heads.push_back(i);
  while (seen < kChains && !failed) {
    while (posted < kChains && !free_heads.empty()) {
      uint16_t d = free_heads.back();
      free_heads.pop_back();
      EXPECT_TRUE(r.mem.writeObj(GuestAddress(bufs[d]), uint64_t{posted}).ok());
      r.driver.writeDesc(d, bufs[d], 8, 0, 0);
      r.driver.publish(d);
      ++posted;
    }
    while (auto u = r.driver.popUsed()) {
      EXPECT_EQ(u->len, seen) << "used entries out of order";
      free_heads.push_back(static_cast<uint16_t>(u->id));
      ++seen;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      failed = true;
      ADD_FAILURE() << "driver timed out at " << seen;
    }
    std::this_thread::yield();
  }
  device.join();
  EXPECT_EQ(seen, kChains);
}

}  // namespace
}  // namespace ember::virtio
