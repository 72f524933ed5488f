// VhostRings against a recording backend and host: a queue is handed over with its size, its
// rings' host addresses inside the guest's mapping, its next available index and the
// transport's kick and interrupt eventfds; without a kick to hand over (ioeventfd=off) ember's
// own eventfd carries notify()'s kicks; a backend that refuses a request fails the start, and
// stopping takes back everything that was handed over.
#include <gtest/gtest.h>

#include <map>

#include "virtio/VhostRings.h"

namespace ember::virtio {
namespace {

struct RecordingBackend : VhostBackend {
  std::string name_ = "recording backend";
  std::map<uint32_t, uint32_t> num, base;
  std::map<uint32_t, std::array<uint64_t, 3>> addr;  // desc, used, avail
  std::map<uint32_t, int> kick, call;
  std::vector<uint32_t> stopped;
  bool refuse_addr = false;

  const std::string& name() const override { return name_; }
  Result<void> setVringNum(uint32_t i, uint32_t n) override {
    num[i] = n;
    return {};
  }
  Result<void> setVringAddr(uint32_t i, uint64_t d, uint64_t u, uint64_t a) override {
    if (refuse_addr) return makeError(Errc::Io, "recording backend: VHOST_SET_VRING_ADDR refused");
    addr[i] = {d, u, a};
    return {};
  }
  Result<void> setVringBase(uint32_t i, uint32_t b) override {
    base[i] = b;
    return {};
  }
  Result<uint32_t> getVringBase(uint32_t i) override {
    stopped.push_back(i);
    return base[i];
  }
  Result<void> setVringKick(uint32_t i, int fd) override {
    kick[i] = fd;
    return {};
  }
  Result<void> setVringCall(uint32_t i, int fd) override {
    call[i] = fd;
    return {};
  }
};

struct RecordingHost : VirtioDeviceHost {
  bool has_kick = true;
  // The handed-over kick: a real eventfd (VhostRings reads it when the backend stops).
  std::optional<EventFd> kick_fd{std::move(EventFd::create()).value()};
  int kicks_handed = 0, kicks_back = 0, calls_handed = 0, calls_back = 0;
  void queueUsed(uint16_t, SplitQueue&) override {}
  void configChanged() override {}
  void needsReset(const std::string&) override {}
  bool mayProcess() const override { return true; }
  Result<int> handOverKick(uint16_t) override {
    if (!has_kick) return makeError(Errc::Unsupported, "no kick");
    ++kicks_handed;
    return kick_fd->fd();
  }
  void takeBackKick(uint16_t) override { ++kicks_back; }
  Result<int> handOverInterrupt(uint16_t q) override {
    ++calls_handed;
    return 200 + q;
  }
  void takeBackInterrupt(uint16_t) override { ++calls_back; }
};

struct Rig {
  GuestMemory mem = std::move(GuestMemory::create(specs())).value();
  SplitQueue queue =
      std::move(SplitQueue::activate(mem, {256, 0x10000, 0x20000, 0x30000}, 256, false, false))
          .value();
  static std::vector<GuestRegionSpec> specs() { return {{GuestAddress(0), 1 << 20}}; }
};

TEST(VhostRings, AQueueIsHandedOverWithItsHostAddressesAndTheTransportsEventfds) {
  Rig rig;
  RecordingBackend backend;
  RecordingHost host;
  VhostRings rings(2);
  ASSERT_TRUE(rings.start(backend, rig.mem, host, 1, rig.queue));
  auto ram = reinterpret_cast<uint64_t>(rig.mem.regions()[0].mapping.data());
  EXPECT_EQ(backend.num[1], 256u);
  EXPECT_EQ(backend.addr[1],
            (std::array<uint64_t, 3>{ram + 0x10000, ram + 0x30000, ram + 0x20000}));
  EXPECT_EQ(backend.base[1], rig.queue.nextAvail());
  EXPECT_EQ(backend.kick[1], host.kick_fd->fd());
  EXPECT_EQ(backend.call[1], 201);
  EXPECT_TRUE(rings.started(1));
  EXPECT_FALSE(rings.started(0));
  EXPECT_FALSE(rings.forwardKick(1)) << "KVM signals a handed-over kick, not ember";
  rings.stopAll(&backend, host, "dev");
  EXPECT_EQ(backend.stopped, std::vector<uint32_t>{1});
  EXPECT_EQ(host.kicks_back, 1);
  EXPECT_EQ(host.calls_back, 1);
  EXPECT_FALSE(rings.started(1));
}

TEST(VhostRings, WithoutAKickToHandOverEmberForwardsNotify) {
  Rig rig;
  RecordingBackend backend;
  RecordingHost host;
  host.has_kick = false;
  VhostRings rings(1);
  ASSERT_TRUE(rings.start(backend, rig.mem, host, 0, rig.queue));
  int fd = backend.kick[0];
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(rings.forwardKick(0));
  uint64_t n = 0;
  ASSERT_EQ(::read(fd, &n, sizeof n), static_cast<ssize_t>(sizeof n));
  EXPECT_EQ(n, 1u);
  rings.stopAll(&backend, host, "dev");
  EXPECT_EQ(host.kicks_back, 0);
  EXPECT_EQ(host.calls_back, 1);
  EXPECT_FALSE(rings.forwardKick(0));
}

TEST(VhostRings, ARefusedRequestFailsTheStartAndStoppingTakesBackWhatWasHanded) {
  Rig rig;
  RecordingBackend backend;
  backend.refuse_addr = true;
  RecordingHost host;
  VhostRings rings(1);
  auto r = rings.start(backend, rig.mem, host, 0, rig.queue);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("VHOST_SET_VRING_ADDR refused"), std::string::npos);
  EXPECT_EQ(host.kicks_handed + host.calls_handed, 0) << "nothing handed before the rings were set";
  rings.stopAll(&backend, host, "dev");
  EXPECT_EQ(backend.stopped, std::vector<uint32_t>{0});
  // A backend that is gone (null) is not asked; the queue is still started no more.
  RecordingBackend good;
  ASSERT_TRUE(rings.start(good, rig.mem, host, 0, rig.queue));
  rings.stopAll(nullptr, host, "dev");
  EXPECT_TRUE(good.stopped.empty());
  EXPECT_EQ(host.kicks_back, 1);
  EXPECT_FALSE(rings.started(0));
}

// Hostile: a ring whose addresses are not in the guest's RAM never reaches the backend (the
// kernel's vhost would be given a host address outside the mapping). The transport already
// refuses such a queue at DRIVER_OK; this is the check VhostRings makes itself, shown with a
// queue validated against a larger memory than the one handed to the backend.
TEST(Hostile, VhostRingOutsideRamIsRefusedBeforeTheBackendSeesIt) {
  Rig rig;  // rings at 64-192 KiB
  GuestRegionSpec small_spec[] = {{GuestAddress(0), 0x18000}};
  auto small = std::move(GuestMemory::create(small_spec)).value();
  RecordingBackend backend;
  RecordingHost host;
  VhostRings rings(1);
  auto r = rings.start(backend, small, host, 0, rig.queue);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not in guest RAM"), std::string::npos) << r.error().message;
  EXPECT_TRUE(backend.num.empty() && backend.addr.empty()) << "the backend was told something";
  EXPECT_EQ(host.kicks_handed + host.calls_handed, 0);
  EXPECT_FALSE(rings.started(0));
}

// The kernel's vhost never reads its kick eventfd's counter: once it has stopped the ring, the
// kicks it was woken by are cleared, so that taking the eventfd back finds no kick waiting (the
// run record would count every kick the backend served as ember's own).
TEST(VhostRings, KicksTheBackendSawAreClearedWhenItStops) {
  Rig rig;
  RecordingBackend backend;
  RecordingHost host;
  VhostRings rings(1);
  ASSERT_TRUE(rings.start(backend, rig.mem, host, 0, rig.queue));
  for (int i = 0; i < 1000; ++i) host.kick_fd->signal();  // the guest's kicks, vhost's to see
  rings.stopAll(&backend, host, "dev");
  EXPECT_EQ(host.kick_fd->consume(), 0u);
  // A backend that is gone stopped nothing: what is in the eventfd stays for the transport.
  ASSERT_TRUE(rings.start(backend, rig.mem, host, 0, rig.queue));
  host.kick_fd->signal();
  rings.stopAll(nullptr, host, "dev");
  EXPECT_EQ(host.kick_fd->consume(), 1u);
}

TEST(VhostRings, AQueueIndexBeyondTheDevicesIsRefused) {
  Rig rig;
  RecordingBackend backend;
  RecordingHost host;
  VhostRings rings(1);
  EXPECT_FALSE(rings.start(backend, rig.mem, host, 1, rig.queue));
  EXPECT_TRUE(backend.num.empty());
}

}  // namespace
}  // namespace ember::virtio
