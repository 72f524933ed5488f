// virtio-net, driver side (virtio 1.2 section 5.1), on either face of the transport: one receive
// queue (0) kept stocked with 2 KiB buffers, one transmit queue (1), the MAC address from the
// device configuration, and the virtio-net header in front of every frame (5.1.6: 12 bytes with
// VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF, else 10). No offloads are negotiated, so frames
// carry complete checksums both ways and every header the device returns must say so.
//
// Transmit chains take three shapes (so that a device sees all of them): header and frame in one
// descriptor, header and frame in two, or those two in an indirect table (when offered).
// Optionally (`event_idx`) the driver negotiates VIRTIO_RING_F_EVENT_IDX and kicks only when the
// device's avail_event asks for it (2.7.10), as Linux does; interrupts are not used for data (the
// driver polls the used rings), but MSI-X is enabled and every vector has its entry.
#pragma once

#include "virtio_device.h"

namespace guest {

constexpr uint16_t kVirtioTypeNet = 1;

class NetDriver {
 public:
  static constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
  static constexpr uint32_t kBufBytes = 2048;   // one receive or transmit buffer
  static constexpr uint32_t kFrameOffset = 32;  // transmit frames start here in their buffer
  static constexpr uint16_t kMaxBufs = 128;     // per direction
  static constexpr uint32_t kMaxFrame = 1514;   // Ethernet header + 1500

  enum class TxShape : uint8_t { Single, Split, Indirect };

  struct Options {
    bool mrg_rxbuf = false;  // negotiate VIRTIO_NET_F_MRG_RXBUF
    bool event_idx = false;  // negotiate VIRTIO_RING_F_EVENT_IDX and honour avail_event
  };

  // Initialises `d` (3.1.1), reads the MAC, sets up both queues and posts the receive buffers.
  bool start(VirtioDevice* d, const Options& o, TestResult& r);
  VirtioDevice* device() const { return d_; }
  const uint8_t* mac() const { return mac_; }
  uint32_t header_size() const { return hdr_; }
  bool indirect() const { return indirect_; }
  bool event_idx() const { return event_idx_; }

  // ---- transmit ----
  // The frame area (kMaxFrame bytes) of a free transmit buffer, reaping completions and waiting
  // up to `timeout_ms` for one; nullptr (and `r` failed) when none becomes free.
  uint8_t* tx_buffer(uint32_t timeout_ms, TestResult& r);
  // Publishes the frame in `frame` (from tx_buffer) of `len` bytes; kicks when `kick`.
  bool tx_submit(uint8_t* frame, uint32_t len, TxShape shape, bool kick, TestResult& r);
  void tx_kick();
  // Takes back completed transmit buffers; false (and `r` failed) when the device returned
  // something invalid.
  bool tx_reap(TestResult& r);
  // Waits until every submitted frame has been returned.
  bool tx_drain(uint32_t timeout_ms, TestResult& r);
  uint16_t tx_in_flight() const { return static_cast<uint16_t>(tx_bufs_ - tx_free_count_); }
  uint64_t tx_frames() const { return tx_frames_; }

  // ---- receive ----
  // 1 and the next received frame (Ethernet header onwards), 0 when there is none now, -1 when
  // the device returned something invalid (`r` failed).
  int rx_poll(uint8_t** frame, uint32_t* len, TestResult& r);
  // Hands the buffer of a frame from rx_poll back to the device (kicked in batches, and
  // whenever rx_poll finds nothing).
  bool rx_release(uint8_t* frame, TestResult& r);
  uint64_t rx_frames() const { return rx_frames_; }
  // Frames whose 12-byte header said num_buffers 0 without MRG_RXBUF (pre-2024 devices).
  uint64_t num_buffers_zero() const { return num_buffers_zero_; }
  uint64_t kicks(uint16_t q) const { return kicks_[q]; }

  // True when the device has not flagged DEVICE_NEEDS_RESET (or FAILED).
  bool healthy(TestResult& r);

 private:
  uint8_t* buf(uint16_t dir, uint16_t i) const {
    return mem_ + (static_cast<uint64_t>(dir) * kMaxBufs + i) * kBufBytes;
  }
  bool rx_post(uint16_t i, TestResult& r);
  void kick(uint16_t q);

  VirtioDevice* d_ = nullptr;
  uint8_t* mem_ = nullptr;  // 2 x kMaxBufs buffers, allocated once
  uint8_t mac_[6] = {};
  uint32_t hdr_ = 12;
  bool mrg_ = false, indirect_ = false, event_idx_ = false;
  uint16_t rx_bufs_ = 0, tx_bufs_ = 0;
  uint16_t buf_of_head_[2][Virtqueue::kMaxSize] = {};
  uint16_t tx_free_[kMaxBufs] = {};
  uint16_t tx_free_count_ = 0;
  uint16_t kicked_avail_[2] = {};  // avail index at the last notification decision
  uint16_t rx_unkicked_ = 0;
  uint64_t tx_frames_ = 0, rx_frames_ = 0, num_buffers_zero_ = 0, kicks_[2] = {};
};

}  // namespace guest
