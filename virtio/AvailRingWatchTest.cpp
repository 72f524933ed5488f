// AvailRingWatch: finds buffers made available without a kick, suppresses and resumes the
// driver's notifications the way a driver reads them (used flags, or avail_event with
// EVENT_IDX), and, racing a real driver thread through a real event loop and eventfd, never
// leaves a buffer waiting for a kick that does not come (virtio 1.2, 2.7.10).
// test-labels: threaded
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "kvm/EventLoop.h"
#include "virtio/AvailRingWatch.h"
#include "virtio/QueueProcessing.h"
#include "virtio/testing/MockDriver.h"

namespace ember::virtio {
namespace {

using testing::MockDriver;
using namespace std::chrono_literals;

// 2.7.10.1 vring_need_event, as a driver evaluates it after moving its index from old to new.
bool needEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// What a driver decides after publishing buffers old..new (2.7.10): kick or not.
bool driverKicks(const MockDriver& d, bool event_idx, uint16_t old_idx, uint16_t new_idx) {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the index before the suppression state
  if (event_idx) return needEvent(d.availEvent(), new_idx, old_idx);
  return !(d.usedFlags() & kUsedNoNotify);
}

class AvailRingWatchTest : public ::testing::TestWithParam<bool> {
 protected:
  GuestMemory mem = testing::makeTestMemory();
  MockDriver driver{mem, 64, 0x10000};
  bool event_idx = GetParam();

  AvailRingWatch start() {
    auto w = AvailRingWatch::start(mem, driver.geometry(), event_idx);
    EXPECT_TRUE(w.ok());
    return std::move(w).value();
  }
  void publishOne() { driver.publish(driver.takeDescriptors(1)); }
};

TEST_P(AvailRingWatchTest, BuffersQueuedBeforeTheStartAreNotItsToAnnounce) {
  publishOne();
  publishOne();
  auto w = start();
  EXPECT_EQ(w.seen(), 2);
  EXPECT_FALSE(*w.moved());
  publishOne();
  EXPECT_TRUE(*w.moved());
  EXPECT_FALSE(*w.moved()) << "each buffer is announced once";
}

TEST_P(AvailRingWatchTest, SuppressedTheDriverDoesNotKickResumedItKicksTheNextBuffer) {
  auto w = start();
  ASSERT_TRUE(driverKicks(driver, event_idx, 0, 0) || event_idx);
  ASSERT_TRUE(w.suppress().ok());
  EXPECT_TRUE(w.suppressed());
  for (int i = 0; i < 5; ++i) {
    uint16_t old_idx = driver.availIdx();
    publishOne();
    EXPECT_FALSE(driverKicks(driver, event_idx, old_idx, driver.availIdx())) << "buffer " << i;
    EXPECT_TRUE(*w.moved());
    ASSERT_TRUE(w.suppress().ok());  // as the transport re-suppresses after a delivery
  }
  auto arrived = w.resume();
  ASSERT_TRUE(arrived.ok());
  EXPECT_FALSE(*arrived);
  EXPECT_FALSE(w.suppressed());
  uint16_t old_idx = driver.availIdx();
  publishOne();
  EXPECT_TRUE(driverKicks(driver, event_idx, old_idx, driver.availIdx()));
}

TEST_P(AvailRingWatchTest, ResumeFindsWhatArrivedWhileSuppressed) {
  auto w = start();
  ASSERT_TRUE(w.suppress().ok());
  publishOne();  // the driver saw the suppression and did not kick
  auto arrived = w.resume();
  ASSERT_TRUE(arrived.ok());
  EXPECT_TRUE(*arrived) << "the buffer must be found by the last look, since no kick comes";
  EXPECT_EQ(w.seen(), 1);
}

TEST_P(AvailRingWatchTest, ResumeWithoutSuppressionOnlyLooks) {
  auto w = start();
  uint16_t flags = driver.usedFlags(), event = driver.availEvent();
  publishOne();
  EXPECT_TRUE(*w.resume());
  EXPECT_EQ(driver.usedFlags(), flags);
  EXPECT_EQ(driver.availEvent(), event);
}

// Hostile: a driver that moves its available index without end (or jumps it by any amount)
// cannot keep resume() from returning; what it gets is its buffers reported as arrived.
TEST_P(AvailRingWatchTest, HostileADriverThatNeverHoldsItsIndexStillCannotHoldTheLoop) {
  auto w = start();
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    uint16_t idx = 0;
    while (!stop) driver.setAvailIdx(idx += 977);  // not a queue's worth: garbage, and moving
  });
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(w.suppress().ok());
    auto r = w.resume();
    ASSERT_TRUE(r.ok());
    (void)w.moved();
  }
  stop = true;
  spinner.join();
  SUCCEED() << "2000 resumes returned while the index moved";
}

// The loop's poll phase over one queue, as the transport runs it, with a real SplitQueue as the
// device: a kick (the eventfd) or a poll that finds new buffers has it drain the ring, which
// re-arms EVENT_IDX notifications as every device's ring processing does (drainAvailable).
struct RacePoller : EventLoop::Poller {
  AvailRingWatch* watch = nullptr;
  SplitQueue* queue = nullptr;
  std::atomic<uint16_t>* consumed = nullptr;

  void consume() {
    auto r = drainAvailable(
        *queue, [&](DescriptorChain& chain) { return queue->pushUsed(chain.head(), 0); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    consumed->store(queue->nextAvail(), std::memory_order_release);
  }
  void beginPolling() override { ASSERT_TRUE(watch->suppress().ok()); }
  bool poll() override {
    if (!*watch->moved()) return false;
    consume();
    if (watch->suppressed()) {
      EXPECT_TRUE(watch->suppress().ok());  // as the transport does
    }
    return true;
  }
  bool endPolling() override {
    if (!*watch->resume()) return false;
    consume();
    return true;
  }
};

// A driver thread publishes buffers in bursts with pauses (so the loop both polls and sleeps)
// and kicks only when the ring says so; the loop thread must take every buffer, and no round
// may sleep out its timeout while one waits.
TEST_P(AvailRingWatchTest, NoBufferIsLeftWithoutAKickWhenTheDriverRacesTheResume) {
  auto loop = std::move(EventLoop::create()).value();
  loop->setPollWindow(PollWindow::fixed(20'000));  // polls after every event, then sleeps
  auto kick = std::move(EventFd::create()).value();
  auto w = start();
  auto queue = SplitQueue::activate(mem, driver.geometry(), 64, event_idx, false);
  ASSERT_TRUE(queue.ok());
  std::atomic<uint16_t> consumed{0};
  auto poller = std::make_shared<RacePoller>();
  poller->watch = &w;
  poller->queue = &*queue;
  poller->consumed = &consumed;
  auto preg = loop->addPoller(poller);
  auto kreg = loop->add(kick.fd(), EPOLLIN, [&](uint32_t) {
    kick.consume();
    poller->consume();
  });
  ASSERT_TRUE(kreg.ok());

  constexpr int kBuffers = 20000;
  std::atomic<bool> done{false}, stop_guest{false};
  std::atomic<int> kicks{0};
  std::thread guest([&] {
    std::mt19937 rng(7);
    for (int i = 0; i < kBuffers;) {
      int burst = 1 + static_cast<int>(rng() % 8);
      for (int b = 0; b < burst && i < kBuffers; ++b, ++i) {
        // The queue holds 64: wait for the device before reusing a slot.
        while (static_cast<uint16_t>(driver.availIdx() - consumed.load()) >= 64) {
          if (stop_guest) return;
          std::this_thread::yield();
        }
        uint16_t old_idx = driver.availIdx();
        publishOne();
        if (driverKicks(driver, event_idx, old_idx, driver.availIdx())) {
          kick.signal();
          kicks.fetch_add(1);
        }
      }
      if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
    }
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + 60s;
  bool stalled = false;
  while (consumed.load() != static_cast<uint16_t>(kBuffers) || !done) {
    uint16_t before = consumed.load();
    auto t0 = std::chrono::steady_clock::now();
    loop->runOnce(500);
    // The driver's index as the device reads it (the MockDriver's own copy is its thread's).
    uint16_t avail = *mem.loadU16Acquire(GuestAddress(driver.geometry().avail + 2));
    bool pending = static_cast<uint16_t>(avail - consumed.load()) != 0 &&
                   static_cast<uint16_t>(avail - before) != 0;
    if (std::chrono::steady_clock::now() - t0 >= 500ms && consumed.load() == before && pending) {
      stalled = true;  // a whole timeout slept through with buffers waiting: a lost kick
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  stop_guest = true;
  guest.join();
  EXPECT_FALSE(stalled) << "a buffer was left without a kick at index " << consumed.load();
  EXPECT_EQ(consumed.load(), static_cast<uint16_t>(kBuffers));
  // How often each path ran depends on scheduling, so it is reported, not asserted.
  auto c = loop->counters();
  std::printf("%d buffers, %d kicks; %lu rounds found work polling, %lu slept\n", kBuffers,
              kicks.load(), static_cast<unsigned long>(c.polled),
              static_cast<unsigned long>(c.slept));
}

INSTANTIATE_TEST_SUITE_P(Notification, AvailRingWatchTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "EventIdx" : "UsedFlags"; });

}  // namespace
}  // namespace ember::virtio
