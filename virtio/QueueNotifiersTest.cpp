// QueueNotifiers on a real event loop without KVM (the eventfds are signalled by the test, as KVM
// would on a notify write): kicks served by the loop and counted, the handover of a queue's
// eventfd to a backend and its take-back with no kick lost, detaching with a kick in flight,
// attaching every live queue at its notify address, and the misuse errors.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <vector>

#include "virtio/QueueNotifiers.h"
#include "virtio/VirtioPciLayout.h"

namespace ember::virtio {
namespace {

struct Rig {
  Rig() : loop(std::move(EventLoop::create()).value()) {}
  std::unique_ptr<EventLoop> loop;
  std::vector<uint16_t> kicked;
  QueueNotifiers notifiers{nullptr, *loop, "test-device", 3,
                           [this](uint16_t q) { kicked.push_back(q); }};
  kvm::IoEventAddress where(uint16_t q) {
    return kvm::IoEventAddress{false, 0x1000 + 4u * q, 2, q};
  }
};

void signal(int fd, uint64_t times = 1) {
  for (uint64_t i = 0; i < times; ++i) ASSERT_EQ(eventfd_write(fd, 1), 0);
}

bool readable(int fd) {
  eventfd_t v = 0;
  if (eventfd_read(fd, &v) != 0) return false;
  (void)eventfd_write(fd, v);  // put it back
  return v != 0;
}

// The fd of an attached, loop-served queue: handed over and taken back at once.
int fdOf(Rig& r, uint16_t q) {
  auto fd = r.notifiers.handOver(q);
  EXPECT_TRUE(fd) << fd.error().message;
  EXPECT_FALSE(r.notifiers.takeBack(q));
  return *fd;
}

TEST(QueueNotifiers, TheLoopServesKicksAndCountsEveryWrite) {
  Rig r;
  ASSERT_TRUE(r.notifiers.attach(1, r.where(1)));
  EXPECT_TRUE(r.notifiers.attached(1));
  EXPECT_FALSE(r.notifiers.attached(0));
  EXPECT_TRUE(r.notifiers.anyAttached());
  int fd = fdOf(r, 1);
  signal(fd, 3);  // three writes before the loop wakes: one kick, three counted
  r.loop->runOnce(1000);
  EXPECT_EQ(r.kicked, std::vector<uint16_t>{1});
  EXPECT_EQ(r.notifiers.kicks(), 3u);
  r.loop->runOnce(0);
  EXPECT_EQ(r.kicked.size(), 1u);
}

TEST(QueueNotifiers, AHandedOverEventfdIsTheBackendsUntilTakenBack) {
  Rig r;
  ASSERT_TRUE(r.notifiers.attach(0, r.where(0)));
  auto fd = r.notifiers.handOver(0);
  ASSERT_TRUE(fd) << fd.error().message;
  EXPECT_TRUE(r.notifiers.handedOver(0));
  signal(*fd);
  r.loop->runOnce(0);
  EXPECT_TRUE(r.kicked.empty()) << "the loop no longer reads a handed-over eventfd";
  EXPECT_TRUE(readable(*fd)) << "the kick waits for the backend";

  // The backend left it unread: take-back reports it for the caller to deliver, once.
  EXPECT_TRUE(r.notifiers.takeBack(0));
  EXPECT_FALSE(r.notifiers.handedOver(0));
  EXPECT_TRUE(r.kicked.empty()) << "the caller delivers it, under its own lock";
  EXPECT_EQ(r.notifiers.kicks(), 1u);
  r.loop->runOnce(0);
  EXPECT_TRUE(r.kicked.empty()) << "consumed at take-back, not delivered twice";

  // Served by the loop again.
  signal(*fd);
  r.loop->runOnce(1000);
  EXPECT_EQ(r.kicked, std::vector<uint16_t>{0});
}

TEST(QueueNotifiers, TakeBackWithNothingWaitingReportsNothing) {
  Rig r;
  ASSERT_TRUE(r.notifiers.attach(2, r.where(2)));
  ASSERT_TRUE(r.notifiers.handOver(2));
  EXPECT_FALSE(r.notifiers.takeBack(2));
  EXPECT_FALSE(r.notifiers.takeBack(2)) << "not handed over any more";
}

TEST(QueueNotifiers, DetachReportsKicksStillInTheEventfd) {
  Rig r;
  ASSERT_TRUE(r.notifiers.attach(0, r.where(0)));
  ASSERT_TRUE(r.notifiers.attach(2, r.where(2)));
  int fd2 = fdOf(r, 2);
  signal(fd2);
  EXPECT_EQ(r.notifiers.detachAll(), std::vector<uint16_t>{2});
  EXPECT_FALSE(r.notifiers.anyAttached());
  r.loop->runOnce(0);
  EXPECT_TRUE(r.kicked.empty());
  EXPECT_TRUE(r.notifiers.detachAll().empty());
}

TEST(QueueNotifiers, DetachTakesHandedOverEventfdsToo) {
  Rig r;
  ASSERT_TRUE(r.notifiers.attach(1, r.where(1)));
  auto fd = r.notifiers.handOver(1);
  ASSERT_TRUE(fd);
  signal(*fd);
  EXPECT_EQ(r.notifiers.detachAll(), std::vector<uint16_t>{1});
  EXPECT_FALSE(r.notifiers.handedOver(1));
}

TEST(QueueNotifiers, MisuseIsRefusedWithAnError) {
  Rig r;
  EXPECT_FALSE(r.notifiers.attach(3, r.where(3))) << "no queue 3";
  EXPECT_FALSE(r.notifiers.handOver(0)) << "not attached";
  ASSERT_TRUE(r.notifiers.attach(0, r.where(0)));
  auto again = r.notifiers.attach(0, r.where(0));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::Busy);
  ASSERT_TRUE(r.notifiers.handOver(0));
  auto twice = r.notifiers.handOver(0);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::Busy);
  EXPECT_FALSE(r.notifiers.takeBack(1)) << "never attached";
}

TEST(QueueNotifiers, AttachLivePlacesEnabledQueuesOnTheFaceInUse) {
  Rig r;
  const uint16_t sizes[] = {8, 8, 8};
  DriverState s = DriverState::forQueues(sizes);
  s.queues[0].enabled = s.queues[2].enabled = true;
  r.notifiers.attachLive(s);
  EXPECT_FALSE(r.notifiers.anyAttached()) << "the modern BAR is not mapped yet";
  r.notifiers.setBarAddress(/*legacy_bar=*/false, 0xfe000000);
  r.notifiers.attachLive(s);
  EXPECT_TRUE(r.notifiers.attached(0));
  EXPECT_FALSE(r.notifiers.attached(1));
  EXPECT_TRUE(r.notifiers.attached(2));
  r.notifiers.detachAll();
  s.legacy = true;
  r.notifiers.attachLive(s);
  EXPECT_FALSE(r.notifiers.anyAttached()) << "the legacy BAR is not mapped";
}

TEST(QueueNotifiers, NotifyAddressesOfBothFaces) {
  auto legacy = notifyAddress(true, 0xc000, 3);
  EXPECT_TRUE(legacy.pio);
  EXPECT_EQ(legacy.addr, 0xc000u + legacy::kQueueNotify);
  EXPECT_EQ(legacy.len, 2u);
  EXPECT_EQ(legacy.datamatch, 3u);
  auto modern = notifyAddress(false, 0xfe000000, 3);
  EXPECT_FALSE(modern.pio);
  EXPECT_EQ(modern.addr, 0xfe000000u + layout::kNotifyOffset + 3 * layout::kNotifyMultiplier);
  EXPECT_EQ(modern.datamatch, 3u);
}

}  // namespace
}  // namespace ember::virtio
