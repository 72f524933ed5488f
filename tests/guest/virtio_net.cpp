// virtio-net driver: feature negotiation, receive-buffer stocking, transmit chains of three
// shapes, and validation of everything the device returns (5.1.6).
#include "virtio_net.h"

namespace guest {

namespace {
// 5.1.3 feature bits.
constexpr unsigned kFeatMac = 5, kFeatMrgRxbuf = 15, kFeatStatus = 16;
// 5.1.6 struct virtio_net_hdr.
constexpr uint8_t kHdrNeedsCsum = 1;
constexpr uint8_t kGsoNone = 0;
constexpr uint16_t kLinkUp = 1;

uint8_t* g_net_mem = nullptr;  // the buffers, allocated once for every test that needs them

uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}

bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}
}  // namespace

bool NetDriver::start(VirtioDevice* d, const Options& o, TestResult& r) {
  d_ = d;
  if (g_net_mem == nullptr) {
    g_net_mem = static_cast<uint8_t*>(alloc_pages_uninit(2ULL * kMaxBufs * kBufBytes / 4096));
    if (g_net_mem == nullptr) return fail(r, "out of pages for network buffers");
  }
  mem_ = g_net_mem;
  uint64_t wanted = (1ULL << kFeatMac) | (1ULL << kFeatStatus) | (1ULL << kFeatIndirectDesc) |
                    (o.mrg_rxbuf ? 1ULL << kFeatMrgRxbuf : 0) |
                    (o.event_idx ? 1ULL << kFeatEventIdx : 0);
  if (!d->begin(wanted, true, r)) return false;
  if (o.mrg_rxbuf && !d->has(kFeatMrgRxbuf)) return fail(r, "%s: MRG_RXBUF not offered", d->name());
  if (o.event_idx && !d->has(kFeatEventIdx)) return fail(r, "%s: EVENT_IDX not offered", d->name());
  if (!d->has(kFeatMac)) return fail(r, "%s: VIRTIO_NET_F_MAC not offered", d->name());
  mrg_ = d->has(kFeatMrgRxbuf);
  indirect_ = d->has(kFeatIndirectDesc);
  event_idx_ = d->has(kFeatEventIdx);
  // 5.1.6: the header has num_buffers with VERSION_1 (modern face) or MRG_RXBUF.
  hdr_ = (d->has(kFeatVersion1) || mrg_) ? 12 : 10;
  for (uint32_t i = 0; i < 6; ++i) mac_[i] = d->transport().cfg8(i);
  if (mac_[0] & 1) return fail(r, "%s: configured MAC is a multicast address", d->name());
  if (d->has(kFeatStatus) && !(d->transport().cfg16(6) & kLinkUp)) {
    return fail(r, "%s: link is down (status %x)", d->name(), d->transport().cfg16(6));
  }
  if (!d->setup_queues(2, 256, indirect_ ? 2 : 0, r)) return false;
  for (uint16_t q = 0; q < 2; ++q) {
    for (auto& b : buf_of_head_[q]) b = 0xffff;
    kicked_avail_[q] = 0;
    kicks_[q] = 0;
  }
  // Split transmit chains take two descriptors: never more buffers than the ring can hold.
  uint16_t rx_size = d->queue(kRxQueue).size(), tx_size = d->queue(kTxQueue).size();
  rx_bufs_ = rx_size < kMaxBufs ? rx_size : kMaxBufs;
  tx_bufs_ = tx_size / 2 < kMaxBufs ? static_cast<uint16_t>(tx_size / 2) : kMaxBufs;
  if (rx_bufs_ == 0 || tx_bufs_ == 0)
    return fail(r, "%s: queues too small (%u/%u)", d->name(), rx_size, tx_size);
  for (uint16_t i = 0; i < tx_bufs_; ++i) tx_free_[i] = static_cast<uint16_t>(tx_bufs_ - 1 - i);
  tx_free_count_ = tx_bufs_;
  tx_frames_ = rx_frames_ = num_buffers_zero_ = 0;
  rx_unkicked_ = 0;
  // 5.1.6.3.1: receive buffers before DRIVER_OK would also do; they go in first here.
  for (uint16_t i = 0; i < rx_bufs_; ++i) {
    if (!rx_post(i, r)) return false;
  }
  if (!d->driver_ok(r)) return false;
  kick(kRxQueue);
  sti();
  return true;
}

void NetDriver::kick(uint16_t q) {
  Virtqueue& vq = d_->queue(q);
  uint16_t now = vq.avail_index();
  uint16_t old = kicked_avail_[q];
  kicked_avail_[q] = now;
  if (now == old) return;
  if (event_idx_) {
    // 2.7.10: notify only when the device's avail_event lies in (old, now].
    mb();
    uint16_t event = *reinterpret_cast<volatile uint16_t*>(vq.used_addr() + 4 + 8ULL * vq.size());
    if (!need_event(event, now, old)) return;
    d_->transport().notify(q);
  } else {
    if (!vq.kick_needed()) return;
    d_->transport().notify(q);
  }
  ++kicks_[q];
}

void NetDriver::tx_kick() {
  kick(kTxQueue);
}

bool NetDriver::healthy(TestResult& r) {
  uint8_t s = d_->transport().status();
  if (s & (vstatus::kNeedsReset | vstatus::kFailed)) {
    return fail(r, "%s: device status %x (NEEDS_RESET/FAILED)", d_->name(), s);
  }
  return true;
}

// ---- transmit ----

bool NetDriver::tx_reap(TestResult& r) {
  char why[96];
  uint16_t head;
  uint32_t len;
  for (;;) {
    int rc = d_->queue(kTxQueue).pop(&head, &len, why, sizeof why);
    if (rc == 0) return true;
    if (rc < 0) return fail(r, "%s transmitq: %s", d_->name(), why);
    uint16_t i = buf_of_head_[kTxQueue][head];
    if (i >= tx_bufs_) return fail(r, "%s transmitq: used head %u has no buffer", d_->name(), head);
    buf_of_head_[kTxQueue][head] = 0xffff;
    tx_free_[tx_free_count_++] = i;
    ++tx_frames_;
  }
}

uint8_t* NetDriver::tx_buffer(uint32_t timeout_ms, TestResult& r) {
  uint64_t end = rdtsc() + static_cast<uint64_t>(timeout_ms) * tsc_khz();
  while (tx_free_count_ == 0) {
    if (!tx_reap(r)) return nullptr;
    if (tx_free_count_ != 0) break;
    if (rdtsc() > end) {
      fail(r, "%s: no transmit buffer returned in %u ms (%u in flight, used idx %u)", d_->name(),
           timeout_ms, tx_in_flight(), d_->queue(kTxQueue).used_index());
      return nullptr;
    }
    tx_kick();  // in case a kick was held back
    pause();
  }
  return buf(kTxQueue, tx_free_[--tx_free_count_]) + kFrameOffset;
}

bool NetDriver::tx_submit(uint8_t* frame, uint32_t len, TxShape shape, bool do_kick,
                          TestResult& r) {
  uint64_t off = static_cast<uint64_t>(frame - kFrameOffset - buf(kTxQueue, 0));
  uint16_t i = static_cast<uint16_t>(off / kBufBytes);
  if (off % kBufBytes != 0 || i >= tx_bufs_) return fail(r, "tx_submit: not a transmit buffer");
  if (len < 14 || len > kMaxFrame) return fail(r, "tx_submit: frame of %u bytes", len);
  uint8_t* b = buf(kTxQueue, i);
  VqSeg segs[2];
  uint16_t n;
  if (shape == TxShape::Single) {
    // Header immediately before the frame, one descriptor for both.
    memset(frame - hdr_, 0, hdr_);
    segs[0] = VqSeg{reinterpret_cast<uint64_t>(frame - hdr_), hdr_ + len, false};
    n = 1;
  } else {
    // Header at the start of the buffer, the frame in its own descriptor.
    memset(b, 0, hdr_);
    segs[0] = VqSeg{reinterpret_cast<uint64_t>(b), hdr_, false};
    segs[1] = VqSeg{reinterpret_cast<uint64_t>(frame), len, false};
    n = 2;
  }
  int head = d_->queue(kTxQueue).add(segs, n, shape == TxShape::Indirect && indirect_);
  if (head < 0) {
    // Cannot happen: buffers never outnumber what the ring holds.
    tx_free_[tx_free_count_++] = i;
    return fail(r, "%s: transmitq full with %u in flight", d_->name(), tx_in_flight());
  }
  buf_of_head_[kTxQueue][head] = i;
  if (do_kick) tx_kick();
  return true;
}

bool NetDriver::tx_drain(uint32_t timeout_ms, TestResult& r) {
  tx_kick();
  uint64_t end = rdtsc() + static_cast<uint64_t>(timeout_ms) * tsc_khz();
  while (tx_in_flight() != 0) {
    if (!tx_reap(r)) return false;
    if (tx_in_flight() == 0) break;
    if (rdtsc() > end) {
      return fail(r, "%s: %u transmit buffers not returned in %u ms (used idx %u)", d_->name(),
                  tx_in_flight(), timeout_ms, d_->queue(kTxQueue).used_index());
    }
    pause();
  }
  return true;
}

// ---- receive ----

bool NetDriver::rx_post(uint16_t i, TestResult& r) {
  VqSeg s{reinterpret_cast<uint64_t>(buf(kRxQueue, i)), kBufBytes, true};
  int head = d_->queue(kRxQueue).add(&s, 1, false);
  if (head < 0) return fail(r, "%s: receiveq full", d_->name());
  buf_of_head_[kRxQueue][head] = i;
  ++rx_unkicked_;
  return true;
}

int NetDriver::rx_poll(uint8_t** frame, uint32_t* len, TestResult& r) {
  char why[96];
  uint16_t head;
  uint32_t used;
  int rc = d_->queue(kRxQueue).pop(&head, &used, why, sizeof why);
  if (rc < 0) return fail(r, "%s receiveq: %s", d_->name(), why), -1;
  if (rc == 0) {
    if (rx_unkicked_ != 0) {
      rx_unkicked_ = 0;
      kick(kRxQueue);
    }
    return 0;
  }
  uint16_t i = buf_of_head_[kRxQueue][head];
  if (i >= rx_bufs_)
    return fail(r, "%s receiveq: used head %u has no buffer", d_->name(), head), -1;
  buf_of_head_[kRxQueue][head] = 0xffff;
  uint8_t* b = buf(kRxQueue, i);
  // 5.1.6.4: the used length covers the header and the frame and never exceeds the buffer; a
  // frame is at least an Ethernet header.
  if (used < hdr_ + 14 || used > kBufBytes) {
    return fail(r, "%s receiveq: used length %u for a %u-byte buffer (header %u)", d_->name(), used,
                kBufBytes, hdr_),
           -1;
  }
  // No offloads negotiated: no checksum to complete, no GSO (5.1.6.4.1); one buffer per frame
  // without MRG_RXBUF, and a 1514-byte frame fits one 2 KiB buffer with it.
  if ((b[0] & kHdrNeedsCsum) || b[1] != kGsoNone) {
    return fail(r, "%s receiveq: header flags %x gso_type %x with no offloads negotiated",
                d_->name(), b[0], b[1]),
           -1;
  }
  // num_buffers: 1 (5.1.6.4.1 requires it with VERSION_1 and no MRG_RXBUF too; older devices,
  // QEMU 7.2 among them, leave 0 there then, which is tolerated and counted).
  if (hdr_ == 12 && load16(b + 10) != 1) {
    if (mrg_ || load16(b + 10) != 0) {
      return fail(r, "%s receiveq: num_buffers %u for a %u-byte frame", d_->name(), load16(b + 10),
                  used - hdr_),
             -1;
    }
    ++num_buffers_zero_;
  }
  ++rx_frames_;
  *frame = b + hdr_;
  *len = used - hdr_;
  return 1;
}

bool NetDriver::rx_release(uint8_t* frame, TestResult& r) {
  uint64_t off = static_cast<uint64_t>(frame - hdr_ - buf(kRxQueue, 0));
  uint16_t i = static_cast<uint16_t>(off / kBufBytes);
  if (off % kBufBytes != 0 || i >= rx_bufs_) return fail(r, "rx_release: not a receive buffer");
  if (!rx_post(i, r)) return false;
  if (rx_unkicked_ >= 16) {
    rx_unkicked_ = 0;
    kick(kRxQueue);
  }
  return true;
}

}  // namespace guest
