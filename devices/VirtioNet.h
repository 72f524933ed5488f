// virtio-net (virtio 1.2, 5.1) on a tap device: one receive and one transmit queue.
//
// TX: every chain is written to the tap as one frame with writev (header included: the tap's
// vnet header is struct virtio_net_hdr), straight from guest memory. A chain shorter than the
// header or longer than the largest frame is dropped and counted, and returned with length 0
// (hostile-guest cases 31-32); EAGAIN keeps the chain and waits for EPOLLOUT, never spinning;
// other write errors drop the frame (case 38).
// RX: frames are read from the tap only while the guest has posted buffers; with none, the tap
// is not polled until the next receive-queue kick. A frame that does not fit the buffers
// (without VIRTIO_NET_F_MRG_RXBUF: one chain; with it: as many chains as it takes) is dropped and
// counted, never truncated (case 33). Offload fields are not interpreted by Ember: the tap
// (the kernel's virtio_net_hdr_to_skb) validates them (case 34).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/Tap.h"
#include "devices/VhostNet.h"
#include "kvm/EventLoop.h"
#include "virtio/QueueProcessing.h"
#include "virtio/VirtioDevice.h"

namespace ember::devices {

namespace net {
// 5.1.3 feature bits.
constexpr uint64_t kCsum = 1ULL << 0, kGuestCsum = 1ULL << 1, kMtu = 1ULL << 3, kMac = 1ULL << 5,
                   kGuestTso4 = 1ULL << 7, kGuestTso6 = 1ULL << 8, kHostTso4 = 1ULL << 11,
                   kHostTso6 = 1ULL << 12, kMrgRxbuf = 1ULL << 15, kStatus = 1ULL << 16;
// 5.1.6: the header is 12 bytes with VERSION_1 or MRG_RXBUF (num_buffers), else 10.
uint32_t headerSize(uint64_t negotiated_features);
// TUNSETOFFLOAD flags matching what the guest accepts on receive.
unsigned tapOffloadFlags(uint64_t negotiated_features);
constexpr uint32_t kMaxFrame = 65535 + 14 + 4;  // largest GSO frame plus Ethernet + VLAN header
}  // namespace net

struct NetStats {
  uint64_t rx_frames = 0, rx_bytes = 0, rx_dropped = 0;
  uint64_t tx_frames = 0, tx_bytes = 0, tx_dropped = 0;
  uint64_t tx_errors = 0;  // of tx_dropped: frames the tap refused with an error (not EAGAIN)
};

class VirtioNet : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
  static constexpr uint16_t kQueueSize = 256;

  // `loop` serves the tap fd; without one, call onTapEvent() by hand (tests). With `vhost`
  // (--net ...,vhost=on), the kernel's vhost-net serves the queues instead (VhostNet.h).
  VirtioNet(Tap tap, std::array<uint8_t, 6> mac, uint16_t mtu, EventLoop* loop,
            std::unique_ptr<VhostNet> vhost = nullptr);
  ~VirtioNet() override;

  std::string name() const override { return "virtio-net " + tap_.name(); }
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override { return 2; }
  uint16_t queueMaxSize(uint16_t) const override { return kQueueSize; }
  uint32_t configSize() const override { return 12; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  // A snapshot: the chains taken for a frame still waiting for room (receive) or for the tap
  // (transmit) are given back to their rings by saving the queue a position earlier (the
  // driver does not touch an available entry before it is used: 2.7.13), and the waiting
  // receive frame is saved and delivered first after the restore.
  Result<virtio::QueuePositions> saveState(StateWriter& w) override;
  void loadState(StateReader& r) override;

  void onTapEvent(uint32_t events);
  bool vhost() const { return vhost_ != nullptr; }
  NetStats stats() const;
  // requests: frames received and sent; bytes: their Ethernet bytes; errors: frames the tap
  // refused; dropped: frames dropped either way (malformed chains, no room, tap errors).
  virtio::DeviceCounters counters() const override;

 private:
  void receiveLocked();
  void transmitLocked();
  void updateTapEventsLocked();
  bool deliverPendingLocked();  // true when the pending frame went to the guest

  Tap tap_;
  std::unique_ptr<VhostNet> vhost_;
  std::array<uint8_t, 6> mac_;
  uint16_t mtu_;
  EventLoop* loop_;
  EventLoop::Registration tap_reg_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  uint32_t header_size_ = 12;
  bool mergeable_ = false;
  // RX: a frame read from the tap waiting for enough guest buffers, and the chains taken so far.
  std::vector<uint8_t> rx_frame_;
  size_t rx_frame_len_ = 0;
  std::vector<virtio::ChainBuffers> rx_chains_;
  bool rx_waiting_for_buffers_ = false;
  // TX: a chain the tap refused with EAGAIN, retried on EPOLLOUT.
  std::optional<virtio::ChainBuffers> tx_pending_;
  uint32_t tap_events_ = 0;
  bool tap_gone_ = false;  // the tap reported EPOLLERR: no longer watched
  NetStats stats_;
};

}  // namespace ember::devices
