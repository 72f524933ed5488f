// Fuzzes virtio-net's header handling (virtio 1.2 section 5.1.6): the negotiated features decide
// the header size (10 or 12 bytes) and whether receive frames merge across buffers; the fuzzer
// writes both rings and the buffers in guest memory, injects frames of any length from the
// wire, and kicks the queues and fires tap events in any order. Transmit chains shorter than the
// header, oversized frames, receive buffers too small for header + frame, and num_buffers
// accounting are all on this path. Properties: no crash, no access outside guest RAM (ASan),
// bounded work, every used length within the buffers the chain offered.
//
// The device needs a real tap to activate (it sets the tap's vnet header size and offloads), so
// the fuzzer runs in a network namespace of its own (root and /dev/net/tun required), activates
// on the tap, then swaps the tap's descriptor for one end of a datagram socketpair: the other end
// is the wire, with no kernel networking behind it to make runs slow or unrepeatable.
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "FuzzInput.h"
#include "devices/Tap.h"
#include "devices/VirtioNet.h"
#include "kvm/GuestMemory.h"
#include "kvm/Log.h"
#include "virtio/SplitQueue.h"
#include "virtio/VirtioSpec.h"

using namespace ember;

namespace {

constexpr uint64_t kRam = 0x40000;
constexpr uint16_t kQueueSize = 64;
// Ring layout per queue (descriptor table, avail, used), then a data area the descriptors point
// into (fuzzer addresses are taken modulo a little more than RAM, so some fall outside).
constexpr uint64_t kRing[2] = {0x1000, 0x3000};
constexpr uint64_t kData = 0x8000;

struct Host : virtio::VirtioDeviceHost {
  void queueUsed(uint16_t, virtio::SplitQueue&) override {}
  void configChanged() override {}
  void needsReset(const std::string&) override { needs_reset = true; }
  bool mayProcess() const override { return true; }
  bool needs_reset = false;
};

struct Rig {
  Rig() {
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "NetHeaderFuzzer: needs root (a network namespace and a tap)\n");
      std::exit(1);
    }
    auto tap = devices::Tap::open("fz0");
    if (!tap) {
      std::fprintf(stderr, "NetHeaderFuzzer: %s\n", tap.error().message.c_str());
      std::exit(1);
    }
    tap_fd = tap->fd();
    real_tap = dup(tap_fd);
    GuestRegionSpec spec{GuestAddress(0), kRam};
    mem.emplace(std::move(GuestMemory::create(std::span(&spec, 1))).value());
    net = std::make_unique<devices::VirtioNet>(
        std::move(*tap), std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1}, 0, nullptr);
  }
  int tap_fd = -1, real_tap = -1;
  std::optional<GuestMemory> mem;
  std::unique_ptr<devices::VirtioNet> net;
};

Rig& rig() {
  static Rig* r = [] {
    log::setLevel(log::Level::Off);
    return new Rig();
  }();
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Rig& r = rig();
  fuzz::FuzzInput in(data, size);
  for (const auto& region : r.mem->regions()) std::memset(region.mapping.data(), 0, region.size);

  // Features: VERSION_1 or legacy, with or without mergeable buffers and the offloads.
  uint8_t f = in.take<uint8_t>();
  uint64_t features = 0;
  if (f & 1) features |= virtio::feature::kVersion1;
  if (f & 2) features |= devices::net::kMrgRxbuf;
  if (f & 4) features |= devices::net::kCsum | devices::net::kHostTso4;
  if (f & 8) features |= devices::net::kGuestCsum | devices::net::kGuestTso4;
  if (f & 16) features |= virtio::feature::kEventIdx;
  if (f & 32) features |= virtio::feature::kIndirectDesc;

  // Both queues' rings and the data area come from the input.
  virtio::QueueSet queues;
  for (int q = 0; q < 2; ++q) {
    virtio::QueueGeometry g;
    g.size = kQueueSize;
    g.desc = kRing[q];
    g.avail = kRing[q] + 16 * kQueueSize;
    g.used = kRing[q] + 0x1000;
    auto desc = in.takeBytes(16 * kQueueSize);
    std::vector<uint8_t> table(desc.begin(), desc.end());
    // Keep descriptor addresses mostly inside RAM so that chains get past the memory checks.
    for (size_t i = 0; i + 16 <= table.size(); i += 16) {
      uint64_t addr;
      std::memcpy(&addr, &table[i], 8);
      addr = kData + addr % (kRam - kData + 0x1000);
      std::memcpy(&table[i], &addr, 8);
    }
    (void)r.mem->write(GuestAddress(g.desc), table);
    (void)r.mem->write(GuestAddress(g.avail), in.takeBytes(4 + 2 * kQueueSize));
    auto sq = virtio::SplitQueue::activate(*r.mem, g, 256, features & virtio::feature::kEventIdx,
                                           features & virtio::feature::kIndirectDesc);
    if (!sq) return 0;
    queues.push_back(std::move(*sq));
  }
  (void)r.mem->write(GuestAddress(kData), in.takeBytes(0x4000));

  // Activate on the real tap, then make the socketpair the wire.
  if (dup2(r.real_tap, r.tap_fd) != r.tap_fd) abort();
  Host host;
  if (!r.net->activate(virtio::Activation{&*r.mem, features, std::move(queues), &host})) return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
  int sndbuf = 16384;
  (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (dup2(sv[0], r.tap_fd) != r.tap_fd) abort();
  close(sv[0]);

  std::vector<uint8_t> frame;
  uint8_t sink[70000];
  for (int ops = 0; ops < 64 && !in.empty(); ++ops) {
    switch (in.take<uint8_t>() % 6) {
      case 0:
        r.net->notify(devices::VirtioNet::kTxQueue);
        break;
      case 1:
        r.net->notify(devices::VirtioNet::kRxQueue);
        break;
      case 2: {  // a frame from the wire: the vnet header the tap would prepend, then the frame
        uint16_t len = in.take<uint16_t>() % 9100;
        auto bytes = in.takeBytes(std::min<size_t>(len, 64));
        frame.assign(len, 0x5a);
        std::copy(bytes.begin(), bytes.end(), frame.begin());
        (void)send(sv[1], frame.data(), frame.size(), MSG_DONTWAIT);
        r.net->onTapEvent(EPOLLIN);
        break;
      }
      case 3:
        r.net->onTapEvent(EPOLLOUT);
        break;
      case 4:  // the wire drains what the device sent
        while (recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        r.net->onTapEvent(EPOLLOUT);
        break;
      case 5: {  // the driver adds more available entries
        int q = in.take<uint8_t>() & 1;
        uint64_t idx_at = kRing[q] + 16 * kQueueSize + 2;
        (void)r.mem->write(GuestAddress(idx_at), in.takeBytes(2));
        break;
      }
    }
  }
  // Every used entry's length fits the writable room of a queue's buffers (RX) or is 0 (TX).
  for (int q = 0; q < 2; ++q) {
    uint64_t used = kRing[q] + 0x1000;
    auto idx = r.mem->readObj<uint16_t>(GuestAddress(used + 2));
    if (!idx) abort();
    for (uint16_t i = 0; i < std::min<uint16_t>(*idx, kQueueSize); ++i) {
      auto len = r.mem->readObj<uint32_t>(GuestAddress(used + 4 + 8 * i + 4));
      if (!len) abort();
      if (q == devices::VirtioNet::kTxQueue && *len != 0) abort();
      if (q == devices::VirtioNet::kRxQueue && *len > 9100 + 12) abort();
    }
  }
  r.net->reset();
  close(sv[1]);
  return 0;
}
