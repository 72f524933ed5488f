// VirtioNet on a real tap: a mock driver posts receive buffers and transmit chains through the
// virtio-pci transport; the host's side of the wire is an AF_PACKET socket on the tap's
// interface (devices/testing/NetTestSupport.h), inside a network namespace private to the test
// thread. Covers the header size for every feature combination, the TUNSETOFFLOAD flags, config
// space, both data paths, mergeable receive buffers, and hostile-guest cases 31-33 and 38.
//
// How the host faults of case 38 are produced:
//  * EIO: a real tap whose interface is down answers every write with EIO (tun_get_user checks
//    IFF_UP first); a fresh tap is down until someone sets it up.
//  * EINVAL: a real tap refuses a frame shorter than an Ethernet header.
//  * EAGAIN: a real tap's write fails with EAGAIN only when its socket send buffer (sk_sndbuf,
//    INT_MAX unless TUNSETSNDBUF lowered it) is exhausted by frames the host stack still holds,
//    which nothing in a unit test can arrange deterministically. So after activation the tap's
//    descriptor is replaced (dup2) by one end of a non-blocking AF_UNIX datagram socketpair: its
//    writes fail with EAGAIN exactly when the peer's queue is full and succeed again once the
//    peer reads, which is the behaviour the device must handle. The device is driven by hand
//    (onTapEvent) in that test, since an epoll registration follows the original file, not the fd
//    number.
// Tests that need a tap skip (with the reason) without root or /dev/net/tun.
// test-labels: threaded
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "devices/VirtioNet.h"
#include "devices/testing/NetTestSupport.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::devices {
namespace {

using namespace virtio::testing;
using namespace devices::testing;
using Buffer = MockDriver::Buffer;
namespace feature = virtio::feature;
namespace status = virtio::status;

constexpr std::array<uint8_t, 6> kMac{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
constexpr uint64_t kRxBase = 0x10000, kTxBase = 0x50000;

// ---- pure functions ----

TEST(VirtioNetHeader, SizeForEveryFeatureCombination) {
  // 5.1.6: num_buffers (12 bytes in all) exists with VERSION_1 or MRG_RXBUF; no other feature
  // changes the size. Every subset of the bits that could plausibly matter is tried.
  const uint64_t bits[] = {feature::kVersion1,    net::kMrgRxbuf,  net::kCsum,
                           net::kGuestCsum,       net::kGuestTso4, net::kGuestTso6,
                           net::kHostTso4,        net::kHostTso6,  net::kMac,
                           net::kStatus,          net::kMtu,       feature::kEventIdx,
                           feature::kIndirectDesc};
  constexpr size_t n = sizeof bits / sizeof bits[0];
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    uint64_t f = 0;
    for (size_t i = 0; i < n; ++i) {
      if (mask & (1u << i)) f |= bits[i];
    }
    bool has_num_buffers = (f & feature::kVersion1) || (f & net::kMrgRxbuf);
    ASSERT_EQ(net::headerSize(f), has_num_buffers ? 12u : 10u) << std::hex << "features " << f;
  }
}

TEST(VirtioNetHeader, TapOffloadFlagsFollowWhatTheGuestAccepts) {
  // Only the guest's receive-side features matter; TSO needs GUEST_CSUM (5.1.3.1).
  const uint64_t unrelated = net::kCsum | net::kHostTso4 | net::kHostTso6 | net::kMrgRxbuf |
                             net::kMac | feature::kVersion1;
  for (uint64_t extra : {uint64_t{0}, unrelated}) {
    EXPECT_EQ(net::tapOffloadFlags(extra), 0u);
    EXPECT_EQ(net::tapOffloadFlags(extra | net::kGuestCsum), unsigned{TUN_F_CSUM});
    EXPECT_EQ(net::tapOffloadFlags(extra | net::kGuestCsum | net::kGuestTso4),
              unsigned{TUN_F_CSUM | TUN_F_TSO4});
    EXPECT_EQ(net::tapOffloadFlags(extra | net::kGuestCsum | net::kGuestTso6),
              unsigned{TUN_F_CSUM | TUN_F_TSO6});
    EXPECT_EQ(net::tapOffloadFlags(extra | net::kGuestCsum | net::kGuestTso4 | net::kGuestTso6),
              unsigned{TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6});
    // TSO without checksum offload is not passed on (the tap would refuse it anyway).
    EXPECT_EQ(net::tapOffloadFlags(extra | net::kGuestTso4 | net::kGuestTso6), 0u);
    EXPECT_EQ(net::tapOffloadFlags(extra | net::kGuestTso4), 0u);
  }
}

// ---- the rig ----

// A VirtioNet on a fresh tap behind the transport harness, with receive (queue 0) and transmit
// (queue 1) mock drivers and the host's AF_PACKET socket on the tap's interface.
struct NetRig {
  explicit NetRig(bool with_loop = false, uint16_t mtu = 0, uint16_t queue_size = 64)
      : tap_name(uniqueTapName()),
        loop(with_loop ? makeLoop() : nullptr),
        h(makeDevice(mtu)),
        rx(h.mem, queue_size, kRxBase),
        tx(h.mem, queue_size, kTxBase) {
    rx.setArena(kRxBase + 0x10000, kTxBase);
    tx.setArena(kTxBase + 0x10000, kRegionBoundary);
  }

  static std::unique_ptr<EventLoop> makeLoop() {
    auto l = EventLoop::create();
    EXPECT_TRUE(l.ok());
    return l.ok() ? std::move(*l) : nullptr;
  }

  std::unique_ptr<virtio::VirtioDevice> makeDevice(uint16_t mtu) {
    if (!netAvailable(&why)) return std::make_unique<VirtioNet>(Tap{}, kMac, mtu, nullptr);
    auto tap = Tap::open(tap_name);
    if (!tap) {
      why = tap.error().message;
      return std::make_unique<VirtioNet>(Tap{}, kMac, mtu, nullptr);
    }
    tap_fd = tap->fd();
    disableIpv6(tap_name);
    auto dev = std::make_unique<VirtioNet>(std::move(*tap), kMac, mtu, loop.get());
    net = dev.get();
    return dev;
  }

  // Negotiates `features` (VERSION_1 is added), sets up both queues, DRIVER_OK; brings the link
  // up unless told not to and opens the host's socket on it.
  bool start(uint64_t features = 0, bool link_up = true) {
    if (net == nullptr) return false;
    h.modernInit(features | feature::kVersion1, {rx.geometry(), tx.geometry()});
    if (h.modernStatus() & status::kNeedsReset) {
      why = "device needs reset after DRIVER_OK";
      return false;
    }
    if (link_up && !setLinkUp(tap_name, true)) {
      why = "cannot set " + tap_name + " up: " + std::strerror(errno);
      return false;
    }
    return wire.open(tap_name, &why);
  }

  uint32_t hdr() const { return net::headerSize(feature::kVersion1); }

  // A transmit chain: header + frame in one descriptor, or split.
  uint16_t postTx(const std::vector<uint8_t>& frame, bool split = false) {
    uint64_t at = tx.alloc(hdr() + frame.size());
    writeBytes(h.mem, at + hdr(), frame);
    if (split)
      return tx.post(
          {{at, hdr(), false}, {at + hdr(), static_cast<uint32_t>(frame.size()), false}});
    return tx.post({{at, static_cast<uint32_t>(hdr() + frame.size()), false}});
  }
  uint64_t postRx(uint32_t len) {
    uint64_t at = rx.alloc(len);
    fillBytes(h.mem, at, 0xcc, len);
    rx.post({{at, len, true}});
    return at;
  }
  void kickRx() { h.kickModern(VirtioNet::kRxQueue); }
  void kickTx() { h.kickModern(VirtioNet::kTxQueue); }

  // Waits until the tap fd has a frame queued for the device (the host's send is asynchronous
  // only in theory, but never assume).
  bool tapReadable(int timeout_ms = 1000) {
    pollfd p{tap_fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
  }
  // Host -> device: one frame into the tap, then (without an event loop) the device told.
  bool inject(const std::vector<uint8_t>& frame) {
    if (!wire.send(frame) || !tapReadable()) return false;
    if (!loop) net->onTapEvent(EPOLLIN);
    return true;
  }

  std::string why;
  PrivateNetns netns;  // before anything that creates interfaces; restored last
  std::string tap_name;
  int tap_fd = -1;
  std::unique_ptr<EventLoop> loop;  // outlives the device
  VirtioNet* net = nullptr;
  TransportHarness h;
  MockDriver rx, tx;
  PacketSocket wire;
};

#define START_OR_SKIP(rig, ...)                          \
  do {                                                   \
    if ((rig).net == nullptr) GTEST_SKIP() << (rig).why; \
    ASSERT_TRUE((rig).start(__VA_ARGS__)) << (rig).why;  \
  } while (0)

std::vector<uint8_t> rxBytes(NetRig& r, uint64_t at, size_t len) {
  return readBytes(r.h.mem, at, len);
}

// ---- configuration ----

TEST(VirtioNet, ConfigSpaceAndFeatures) {
  NetRig r(false, 9000);
  if (r.net == nullptr) GTEST_SKIP() << r.why;
  uint64_t f = r.h.modernDeviceFeatures();
  EXPECT_TRUE(f & net::kMac);
  EXPECT_TRUE(f & net::kStatus);
  EXPECT_TRUE(f & net::kMtu);
  EXPECT_TRUE(f & net::kMrgRxbuf);
  EXPECT_TRUE(f & feature::kVersion1);
  uint8_t cfg[12];
  for (int i = 0; i < 12; ++i) {
    cfg[i] = static_cast<uint8_t>(r.h.modernRead(virtio::VirtioPciTransport::kDeviceOffset + i, 1));
  }
  EXPECT_EQ(0, std::memcmp(cfg, kMac.data(), 6));
  EXPECT_EQ(cfg[6] | cfg[7] << 8, 1);       // VIRTIO_NET_S_LINK_UP
  EXPECT_EQ(cfg[8] | cfg[9] << 8, 1);       // max_virtqueue_pairs
  EXPECT_EQ(cfg[10] | cfg[11] << 8, 9000);  // mtu
  NetRig no_mtu(false, 0);
  if (no_mtu.net != nullptr) {
    EXPECT_FALSE(no_mtu.h.modernDeviceFeatures() & net::kMtu);
  }
}

// ---- data paths ----

TEST(VirtioNet, TransmitReachesTheTapInEveryChainShape) {
  NetRig r;
  START_OR_SKIP(r, feature::kIndirectDesc);
  auto a = testFrame(100, 1), b = testFrame(1514, 2), c = testFrame(60, 3);
  r.postTx(a);
  r.postTx(b, true);
  uint64_t table = r.tx.alloc(32);
  uint64_t at = r.tx.alloc(r.hdr() + c.size());
  writeBytes(r.h.mem, at + r.hdr(), c);
  r.tx.postIndirect({{at, r.hdr(), false}, {at + r.hdr(), static_cast<uint32_t>(c.size()), false}},
                    table);
  r.kickTx();
  for (const auto* want : {&a, &b, &c}) {
    auto got = r.wire.receive(1000);
    ASSERT_TRUE(got) << "frame of " << want->size() << " bytes not seen on the tap";
    EXPECT_EQ(*got, *want);
  }
  auto used = r.tx.drainUsed();
  ASSERT_EQ(used.size(), 3u);
  for (auto e : used) EXPECT_EQ(e.len, 0u);  // transmit buffers are read-only
  auto s = r.net->stats();
  EXPECT_EQ(s.tx_frames, 3u);
  EXPECT_EQ(s.tx_bytes, a.size() + b.size() + c.size());
  EXPECT_EQ(s.tx_dropped, 0u);
}

TEST(VirtioNet, ReceiveWritesHeaderAndFrame) {
  NetRig r;
  START_OR_SKIP(r);
  uint64_t buf = r.postRx(2048);
  r.kickRx();
  auto f = testFrame(342, 7, kMac.data());
  ASSERT_TRUE(r.inject(f));
  auto used = r.rx.drainUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, r.hdr() + f.size());
  auto hdr = rxBytes(r, buf, r.hdr());
  EXPECT_EQ(hdr[0], 0);                  // flags: nothing offloaded to the guest
  EXPECT_EQ(hdr[1], 0);                  // VIRTIO_NET_HDR_GSO_NONE
  EXPECT_EQ(hdr[10] | hdr[11] << 8, 1);  // 5.1.6.4: num_buffers is 1 without MRG_RXBUF
  EXPECT_EQ(rxBytes(r, buf + r.hdr(), f.size()), f);
  EXPECT_EQ(rxBytes(r, buf + r.hdr() + f.size(), 1)[0], 0xcc);  // nothing written past the frame
  EXPECT_EQ(r.net->stats().rx_frames, 1u);
}

TEST(VirtioNet, MergeableBuffersCarryOneFrameAcrossChains) {
  NetRig r;
  START_OR_SKIP(r, net::kMrgRxbuf);
  uint64_t b[4];
  for (auto& x : b) x = r.postRx(256);
  r.kickRx();
  auto f = testFrame(600, 9, kMac.data());  // 12 + 600 bytes: three 256-byte buffers
  ASSERT_TRUE(r.inject(f));
  auto used = r.rx.drainUsed();
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(used[0].len, 256u);
  EXPECT_EQ(used[1].len, 256u);
  EXPECT_EQ(used[2].len, 12u + 600u - 512u);
  auto hdr = rxBytes(r, b[0], 12);
  EXPECT_EQ(hdr[10] | hdr[11] << 8, 3);  // num_buffers
  std::vector<uint8_t> got = rxBytes(r, b[0] + 12, 244);
  auto more = rxBytes(r, b[1], 256);
  got.insert(got.end(), more.begin(), more.end());
  more = rxBytes(r, b[2], used[2].len);
  got.insert(got.end(), more.begin(), more.end());
  EXPECT_EQ(got, f);
}

// ---- hostile guest ----

TEST(Hostile, Case31_TxChainShorterThanTheHeaderIsDropped) {
  NetRig r;
  START_OR_SKIP(r);
  // 5 bytes, only device-writable bytes, and a header with no frame at all (the tap refuses a
  // frame shorter than an Ethernet header: EINVAL, dropped the same way).
  uint64_t a = r.tx.alloc(16);
  r.tx.post({{a, 5, false}});
  r.tx.post({{a, 16, true}});
  r.tx.post({{a, r.hdr(), false}});
  auto ok = testFrame(80, 4);
  r.postTx(ok);
  r.kickTx();
  auto used = r.tx.drainUsed();
  ASSERT_EQ(used.size(), 4u) << "every chain is returned";
  for (auto e : used) EXPECT_EQ(e.len, 0u);
  auto got = r.wire.receive(1000);
  ASSERT_TRUE(got) << "the queue stopped after the bad chains";
  EXPECT_EQ(*got, ok);
  EXPECT_EQ(r.wire.countWithin(100), 0u);
  auto s = r.net->stats();
  EXPECT_EQ(s.tx_dropped, 3u);
  EXPECT_EQ(s.tx_frames, 1u);
  EXPECT_FALSE(r.h.modernStatus() & status::kNeedsReset);
}

// Case 34: Ember never interprets the offload fields of a TX header (csum_start/csum_offset,
// gso_type/gso_size); it hands header and frame to the tap, and the host kernel validates them
// (virtio_net_hdr_to_skb). Fields pointing outside the frame must be refused there, cost the
// guest only that frame, and leave the queue working; nothing reaches the wire.
TEST(Hostile, Case34_OffloadFieldsOutsideTheFrameAreRefusedAndTheQueueGoesOn) {
  NetRig r;
  START_OR_SKIP(r, net::kCsum | net::kHostTso4);
  struct Bad {
    const char* what;
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset;
  };
  // 5.1.6.2: flags bit 0 NEEDS_CSUM; gso_type 1 TCPV4, 3 UDP, 4 TCPV6; 0x80 ECN.
  const Bad bad[] = {
      {"csum_start beyond the frame", 1, 0, 0, 0, 5000, 16},
      {"csum_offset beyond the frame", 1, 0, 0, 0, 20, 4000},
      {"checksum field straddling the end", 1, 0, 0, 0, 90, 9},
      {"TCPv4 GSO without NEEDS_CSUM and a zero segment size", 0, 1, 54, 0, 0, 0},
      {"unknown gso_type", 1, 0x7f, 54, 1400, 34, 16},
  };
  constexpr size_t kFrame = 100;
  for (const Bad& b : bad) {
    auto frame = testFrame(kFrame, 9);
    uint64_t at = r.tx.alloc(r.hdr() + frame.size());
    uint8_t h[12] = {};
    h[0] = b.flags;
    h[1] = b.gso_type;
    auto put16 = [&](int i, uint16_t v) {
      h[i] = static_cast<uint8_t>(v);
      h[i + 1] = static_cast<uint8_t>(v >> 8);
    };
    put16(2, b.hdr_len);
    put16(4, b.gso_size);
    put16(6, b.csum_start);
    put16(8, b.csum_offset);
    writeBytes(r.h.mem, at, std::vector<uint8_t>(h, h + r.hdr()));
    writeBytes(r.h.mem, at + r.hdr(), frame);
    r.tx.post({{at, static_cast<uint32_t>(r.hdr() + frame.size()), false}});
    r.kickTx();
    auto used = r.tx.drainUsed();
    ASSERT_EQ(used.size(), 1u) << b.what << ": chain not returned";
    EXPECT_EQ(used[0].len, 0u) << b.what;
    EXPECT_EQ(r.wire.countWithin(50), 0u) << b.what << ": reached the wire";
  }
  auto s = r.net->stats();
  EXPECT_EQ(s.tx_dropped, std::size(bad));
  EXPECT_EQ(s.tx_frames, 0u);
  EXPECT_FALSE(r.h.modernStatus() & status::kNeedsReset);
  // A well-formed frame still goes out.
  auto ok = testFrame(kFrame, 10);
  r.postTx(ok);
  r.kickTx();
  auto got = r.wire.receive(1000);
  ASSERT_TRUE(got) << "the queue stopped after the bad headers";
  EXPECT_EQ(*got, ok);
}

TEST(Hostile, Case32_OversizedTxFrameDroppedBeforeTheTap) {
  NetRig r;
  START_OR_SKIP(r);
  // One byte over the largest frame, spread over three buffers in two RAM regions, then a chain
  // of ~1.9 MiB: both rejected by length before anything is written. The transmit path writes
  // straight from guest memory (writev), so nothing is allocated per frame either way.
  uint64_t big = 0x100000;  // region 1
  uint32_t over = r.hdr() + net::kMaxFrame + 1;
  r.tx.post({{big, r.hdr(), false},
             {big + 4096, 40000, false},
             {kRegion2Start, over - r.hdr() - 40000, false}});
  r.tx.post({{big, 0xf0000, false}, {kRegion2Start, 0xf0000, false}});
  auto ok = testFrame(1514, 5);
  r.postTx(ok);
  r.kickTx();
  auto used = r.tx.drainUsed();
  ASSERT_EQ(used.size(), 3u);
  for (auto e : used) EXPECT_EQ(e.len, 0u);
  auto got = r.wire.receive(1000);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ok);
  EXPECT_EQ(r.wire.countWithin(100), 0u);
  EXPECT_EQ(r.net->stats().tx_dropped, 2u);
  EXPECT_FALSE(r.h.modernStatus() & status::kNeedsReset);
}

TEST(Hostile, Case33_RxBufferTooSmallDropsAndCounts) {
  NetRig r;
  START_OR_SKIP(r);
  uint64_t small = r.postRx(64);
  r.kickRx();
  auto big = testFrame(200, 6, kMac.data());
  ASSERT_TRUE(r.inject(big));
  auto used = r.rx.drainUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 0u) << "a frame that does not fit is dropped, never truncated";
  EXPECT_EQ(rxBytes(r, small, 64), std::vector<uint8_t>(64, 0xcc)) << "nothing written";
  EXPECT_EQ(r.net->stats().rx_dropped, 1u);
  // The queue goes on: a buffer that fits gets the next frame.
  uint64_t fits = r.postRx(2048);
  r.kickRx();
  auto next = testFrame(200, 8, kMac.data());
  ASSERT_TRUE(r.inject(next));
  used = r.rx.drainUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, r.hdr() + next.size());
  EXPECT_EQ(rxBytes(r, fits + r.hdr(), next.size()), next);
  EXPECT_EQ(r.net->stats().rx_frames, 1u);
  EXPECT_FALSE(r.h.modernStatus() & status::kNeedsReset);
}

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

TEST(Hostile, Case33_NoRxBuffersStopsPollingTheTapUntilTheGuestKicks) {
  NetRig r(/*with_loop=*/true);
  START_OR_SKIP(r);
  // No receive buffers. Three frames arrive; the device reads the first, finds no buffer, and
  // stops polling: the loop then has nothing ready, so runOnce() sleeps its whole timeout.
  auto f1 = testFrame(100, 1, kMac.data()), f2 = testFrame(101, 2, kMac.data()),
       f3 = testFrame(102, 3, kMac.data());
  ASSERT_TRUE(r.wire.send(f1) && r.wire.send(f2) && r.wire.send(f3));
  ASSERT_TRUE(r.tapReadable());
  r.loop->runOnce(100);  // EPOLLIN: one frame taken, no buffer
  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = threadCpuSeconds();
  for (int i = 0; i < 5; ++i) r.loop->runOnce(60);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = threadCpuSeconds() - cpu0;
  EXPECT_GE(wall, 0.25) << "the loop kept dispatching: the tap is still polled";
  EXPECT_LT(cpu, 0.1) << "spinning";
  EXPECT_TRUE(r.tapReadable(0)) << "frames 2 and 3 must still wait in the tap";
  EXPECT_EQ(r.rx.usedIdx(), 0);
  EXPECT_EQ(r.net->stats().rx_dropped, 0u) << "a frame waiting for buffers is not dropped";
  // The guest adds buffers and kicks: the waiting frame lands, polling resumes, the rest follow.
  uint64_t b[3];
  for (auto& x : b) x = r.postRx(2048);
  r.kickRx();
  EXPECT_GE(r.rx.usedIdx(), 1);
  for (int i = 0; i < 20 && r.rx.usedIdx() < 3; ++i) r.loop->runOnce(50);
  auto used = r.rx.drainUsed();
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(rxBytes(r, b[0] + r.hdr(), f1.size()), f1);
  EXPECT_EQ(rxBytes(r, b[1] + r.hdr(), f2.size()), f2);
  EXPECT_EQ(rxBytes(r, b[2] + r.hdr(), f3.size()), f3);
}

// 2.7.10: vring_need_event, as a driver evaluates it.
bool needEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

TEST(Hostile, Case33_RxRefillAfterRunningDryIsNoticedWithEventIdx) {
  // Regression: the device used to stop polling the tap on an empty receive queue without
  // publishing avail_event (SplitQueue::armNotification), so a driver that follows 2.7.10
  // (Linux) refilled without kicking and receive stalled for good.
  NetRig r(/*with_loop=*/true);
  START_OR_SKIP(r, feature::kEventIdx);
  // Two buffers, kicked (need_event with avail_event 0 over (0, 2] says kick).
  r.postRx(2048);
  r.postRx(2048);
  ASSERT_TRUE(needEvent(r.rx.availEvent(), 2, 0));
  r.kickRx();
  for (uint16_t s = 0; s < 3; ++s) ASSERT_TRUE(r.wire.send(testFrame(100, s, kMac.data())));
  for (int i = 0; i < 10 && r.rx.usedIdx() < 2; ++i) r.loop->runOnce(50);
  ASSERT_EQ(r.rx.usedIdx(), 2);
  r.loop->runOnce(50);  // the third frame finds no buffer
  // The driver refills two buffers and kicks only if avail_event asks for it.
  r.postRx(2048);
  r.postRx(2048);
  bool kick = needEvent(r.rx.availEvent(), 4, 2);
  EXPECT_TRUE(kick) << "avail_event " << r.rx.availEvent() << ": a 2.7.10 driver will not kick";
  if (kick) r.kickRx();
  for (int i = 0; i < 10 && r.rx.usedIdx() < 3; ++i) r.loop->runOnce(50);
  EXPECT_EQ(r.rx.usedIdx(), 3) << "the third frame never arrived";
}

TEST(Hostile, Case38_TapWriteEioDropsTheFrameAndTheQueueGoesOn) {
  NetRig r;
  START_OR_SKIP(r, 0, /*link_up=*/false);
  // The interface is down: the tap answers EIO. The frame is dropped and its chain returned.
  auto lost = testFrame(100, 1);
  r.postTx(lost);
  r.kickTx();
  auto used = r.tx.drainUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(r.net->stats().tx_dropped, 1u);
  EXPECT_EQ(r.net->stats().tx_frames, 0u);
  EXPECT_FALSE(r.h.modernStatus() & status::kNeedsReset);
  // Link up: the next frame goes out; the lost one is not resent.
  ASSERT_TRUE(setLinkUp(r.tap_name, true)) << std::strerror(errno);
  auto ok = testFrame(100, 2);
  r.postTx(ok);
  r.kickTx();
  auto got = r.wire.receive(1000);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ok);
  EXPECT_EQ(r.wire.countWithin(100), 0u);
  EXPECT_EQ(r.net->stats().tx_frames, 1u);
}

// A tap that goes away (its interface deleted by the host's administrator) while the device
// holds its descriptor: frames sent after that are dropped and their chains returned, receive
// events neither crash nor spin, and the VM goes on.
TEST(Hostile, Case38_TapThatGoesAwayDropsFramesAndTheQueueGoesOn) {
  NetRig r;
  START_OR_SKIP(r);
  auto before = testFrame(100, 1);
  r.postTx(before);
  r.kickTx();
  ASSERT_TRUE(r.wire.receive(1000)) << "the tap did not work to begin with";
  ASSERT_EQ(std::system(("ip link del " + r.tap_name + " 2>/dev/null").c_str()), 0)
      << "cannot delete the tap's interface";
  for (uint16_t i = 0; i < 4; ++i) r.postTx(testFrame(100, static_cast<uint16_t>(2 + i)));
  r.kickTx();
  auto used = r.tx.drainUsed();
  ASSERT_EQ(used.size(), 5u) << "every chain is returned";
  auto s = r.net->stats();
  EXPECT_EQ(s.tx_frames, 1u);
  EXPECT_EQ(s.tx_dropped, 4u);
  // Receive: buffers posted, a kick and a stray readiness event find nothing to read.
  r.postRx(2048);
  r.kickRx();
  r.net->onTapEvent(EPOLLIN | EPOLLERR | EPOLLHUP);
  EXPECT_EQ(r.rx.usedIdx(), 0);
  EXPECT_FALSE(r.h.modernStatus() & status::kNeedsReset);
}

// The same with the event loop: the gone tap's EPOLLERR (reported for ever, whatever events are
// asked for) is seen once and the tap is no longer watched, so the loop sleeps instead of
// spinning; transmitting still drops and returns chains.
TEST(Hostile, Case38_TapThatGoesAwayIsNoLongerPolled) {
  NetRig r(/*with_loop=*/true);
  START_OR_SKIP(r);
  ASSERT_EQ(std::system(("ip link del " + r.tap_name + " 2>/dev/null").c_str()), 0);
  log::ScopedLogCapture logs;
  r.loop->runOnce(100);  // the EPOLLERR
  EXPECT_TRUE(logs.contains("went away")) << ::testing::PrintToString(logs.lines());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) r.loop->runOnce(100);
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(250)) << "the loop keeps waking up for the gone tap";
  r.postTx(testFrame(100, 7));
  r.kickTx();
  EXPECT_EQ(r.tx.drainUsed().size(), 1u);
  EXPECT_EQ(r.net->stats().tx_dropped, 1u);
}

TEST(Hostile, Case38_TapEagainKeepsTheFrameAndRetriesWhenWritable) {
  // Regression: after EAGAIN the device used to keep draining the ring (drainAvailable), and
  // every chain popped while one was pending was neither sent nor returned (rule 15).
  NetRig r;
  START_OR_SKIP(r);
  // Replace the tap by a datagram socketpair end (see the top of this file).
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  int sndbuf = 4096;  // a few frames fill it
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  ASSERT_EQ(dup2(sv[0], r.tap_fd), r.tap_fd);
  close(sv[0]);
  constexpr uint16_t kFrames = 24;
  for (uint16_t i = 0; i < kFrames; ++i) r.postTx(testFrame(1000, i));
  r.kickTx();
  uint16_t first = r.tx.usedIdx();
  ASSERT_GT(first, 0) << "nothing was written";
  ASSERT_LT(first, kFrames) << "the socket never filled up: EAGAIN not exercised";
  // Blocked: more kicks change nothing (no spinning, no frame lost or duplicated).
  for (int i = 0; i < 3; ++i) r.kickTx();
  EXPECT_EQ(r.tx.usedIdx(), first);
  EXPECT_EQ(r.net->stats().tx_dropped, 0u);
  // The peer reads; EPOLLOUT; everything else goes out in order, each chain returned once.
  std::vector<uint16_t> seeds;
  char buf[2048];
  for (int round = 0; round < 100 && seeds.size() < kFrames; ++round) {
    ssize_t n;
    while ((n = recv(sv[1], buf, sizeof buf, 0)) > 0) {
      ASSERT_EQ(n, static_cast<ssize_t>(r.hdr() + 1000));
      seeds.push_back(static_cast<uint16_t>(static_cast<uint8_t>(buf[r.hdr() + 14]) << 8 |
                                            static_cast<uint8_t>(buf[r.hdr() + 15])));
    }
    r.net->onTapEvent(EPOLLOUT);
  }
  close(sv[1]);
  ASSERT_EQ(seeds.size(), kFrames);
  for (uint16_t i = 0; i < kFrames; ++i) EXPECT_EQ(seeds[i], i);
  EXPECT_EQ(r.tx.usedIdx(), kFrames);
  EXPECT_EQ(r.net->stats().tx_frames, kFrames);
  EXPECT_EQ(r.net->stats().tx_dropped, 0u);
}

TEST(VirtioNet, ResetForgetsQueuesAndLaterKicksAreHarmless) {
  NetRig r;
  START_OR_SKIP(r);
  r.postRx(2048);
  r.kickRx();
  r.h.commonWrite(virtio::common::kDeviceStatus, 1, 0);
  EXPECT_EQ(r.h.modernStatus(), 0);
  r.net->onTapEvent(EPOLLIN | EPOLLOUT);  // a late event after reset
  r.kickRx();
  r.kickTx();
  ASSERT_TRUE(r.wire.send(testFrame(100, 1, kMac.data())));
  r.net->onTapEvent(EPOLLIN);
  EXPECT_EQ(r.rx.usedIdx(), 0) << "nothing written to guest memory after reset";
}

// A snapshot's waiting receive frame (issue 13) is untrusted: refused for a device that is off,
// one no longer than its header, or one over a frame's size.
TEST(VirtioNet, Hostile_ASavedFrameIsRefusedWhenItCannotBeTheDevicesOwn) {
  auto load = [](VirtioNet& dev, size_t frame) {
    StateWriter w;
    w.blob(std::vector<uint8_t>(frame, 0x11));
    StateReader r(w.data(), "net");
    dev.loadState(r);
    return r.finish();
  };
  VirtioNet off(Tap{}, kMac, 0, nullptr);
  EXPECT_TRUE(load(off, 0).ok()) << "no frame waiting";
  auto r = load(off, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("the device is off"), std::string::npos) << r.error().message;
  EXPECT_FALSE(load(off, net::kMaxFrame + 13).ok()) << "longer than a frame";
  // A live device: a frame no longer than its header is refused; a real one is delivered first
  // when the guest posts a buffer.
  NetRig rig;
  if (!rig.start()) GTEST_SKIP() << rig.why;
  EXPECT_FALSE(load(*rig.net, 12).ok());
  EXPECT_TRUE(load(*rig.net, 12 + 60).ok());
}

}  // namespace
}  // namespace ember::devices
