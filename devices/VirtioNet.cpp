// virtio-net data paths.
#include "devices/VirtioNet.h"

#include <linux/if_tun.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

uint32_t net::headerSize(uint64_t f) {
  return (f & (feature::kVersion1 | kMrgRxbuf)) ? 12 : 10;
}

unsigned net::tapOffloadFlags(uint64_t f) {
  unsigned flags = 0;
  if (f & kGuestCsum) {
    flags |= TUN_F_CSUM;
    // TSO needs checksum offload (5.1.3.1: GUEST_TSO4 requires GUEST_CSUM).
    if (f & kGuestTso4) flags |= TUN_F_TSO4;
    if (f & kGuestTso6) flags |= TUN_F_TSO6;
  }
  return flags;
}

VirtioNet::VirtioNet(Tap tap, std::array<uint8_t, 6> mac, uint16_t mtu, EventLoop* loop,
                     std::unique_ptr<VhostNet> vhost)
    : tap_(std::move(tap)),
      vhost_(std::move(vhost)),
      mac_(mac),
      mtu_(mtu),
      loop_(loop),
      rx_frame_(vhost_ ? 0 : net::kMaxFrame + 12) {}

VirtioNet::~VirtioNet() {
  reset();
  tap_reg_.reset();
}

uint16_t VirtioNet::deviceType() const {
  return device_type::kNet;
}

uint64_t VirtioNet::features() const {
  uint64_t f = net::kCsum | net::kGuestCsum | net::kMac | net::kGuestTso4 | net::kGuestTso6 |
               net::kHostTso4 | net::kHostTso6 | net::kMrgRxbuf | net::kStatus |
               (mtu_ ? net::kMtu : 0) | feature::kIndirectDesc | feature::kEventIdx;
  return vhost_ ? vhost_->offerable(f) : f;
}

void VirtioNet::readConfig(uint32_t offset, std::span<uint8_t> data) {
  // 5.1.4 struct virtio_net_config: mac[6], status (LINK_UP), max_virtqueue_pairs, mtu.
  uint8_t image[12] = {};
  std::memcpy(image, mac_.data(), 6);
  image[6] = 1;  // VIRTIO_NET_S_LINK_UP
  image[8] = 1;  // one queue pair
  storeLe<uint16_t>(std::span(image).subspan(10, 2), mtu_);
  readConfigBytes(image, offset, data);
}

NetStats VirtioNet::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

DeviceCounters VirtioNet::counters() const {
  std::lock_guard lock(mutex_);
  return DeviceCounters{stats_.rx_frames + stats_.tx_frames, stats_.rx_bytes + stats_.tx_bytes,
                        stats_.tx_errors, stats_.rx_dropped + stats_.tx_dropped};
}

Result<void> VirtioNet::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  if (!activation.queue(kRxQueue) || !activation.queue(kTxQueue)) {
    return makeError(Errc::Guest, "virtio-net activated without both queues");
  }
  header_size_ = net::headerSize(activation.features);
  mergeable_ = activation.features & net::kMrgRxbuf;
  EMBER_TRY(tap_.setVnetHeaderSize(static_cast<int>(header_size_)));
  EMBER_TRY(tap_.setOffload(net::tapOffloadFlags(activation.features)));
  act_ = std::move(activation);
  if (vhost_) {
    if (auto r = vhost_->start(*act_, tap_.fd()); !r) {
      vhost_->stop(*act_->host, name());
      act_.reset();
      return makeError(r.error().code, "{}: vhost-net: {}", name(), r.error().message);
    }
    log::debug("{}: both queues handed to vhost-net", name());
    return {};
  }
  rx_frame_len_ = 0;
  rx_chains_.clear();
  rx_waiting_for_buffers_ = false;
  tx_pending_.reset();
  if (loop_ != nullptr && !tap_reg_.active() && !tap_gone_) {
    tap_reg_ = EMBER_TRY(loop_->add(tap_.fd(), EPOLLIN, [this](uint32_t ev) { onTapEvent(ev); }));
    tap_events_ = EPOLLIN;
  }
  updateTapEventsLocked();
  return {};
}

void VirtioNet::updateTapEventsLocked() {
  uint32_t want = 0;
  if (act_ && !rx_waiting_for_buffers_) want |= EPOLLIN;
  if (act_ && tx_pending_) want |= EPOLLOUT;
  if (tap_reg_.active() && want != tap_events_) {
    (void)tap_reg_.setEvents(want);
    tap_events_ = want;
  }
}

void VirtioNet::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (!act_) return;
  if (vhost_) {
    (void)vhost_->forwardKick(queue);  // ioeventfd=off: vhost-net takes the kick from us
    return;
  }
  if (queue == kTxQueue) {
    transmitLocked();
  } else if (queue == kRxQueue) {
    // New receive buffers: finish a waiting frame and resume polling the tap.
    rx_waiting_for_buffers_ = false;
    receiveLocked();
  }
  updateTapEventsLocked();
}

void VirtioNet::onTapEvent(uint32_t events) {
  std::lock_guard lock(mutex_);
  if (events & (EPOLLERR | EPOLLHUP)) {
    // The tap's interface is gone (tun reports EPOLLERR for a detached queue, and epoll reports
    // it whatever events are asked for, for ever): stop watching, or the loop would spin. Frames
    // the guest sends from now on fail in writev and are dropped and counted.
    tap_reg_.reset();
    tap_events_ = 0;
    tap_gone_ = true;
    log::warn("{}: the tap device went away; its frames are dropped from now on", name());
    return;
  }
  if (!act_ || !act_->host->mayProcess()) return;
  if ((events & EPOLLOUT) && tx_pending_) {
    transmitLocked();
  }
  if (events & EPOLLIN) {
    receiveLocked();
  }
  updateTapEventsLocked();
}

void VirtioNet::transmitLocked() {
  SplitQueue& q = *act_->queue(kTxQueue);
  const GuestMemory& mem = *act_->memory;
  bool pushed = false;
  std::vector<iovec> iov;
  auto send = [&](const ChainBuffers& bufs) -> Result<bool> {  // false: EAGAIN, keep the chain
    uint64_t total = bufs.readableBytes();
    if (total < header_size_ || total > header_size_ + net::kMaxFrame) {
      ++stats_.tx_dropped;
      log::debug("{}: dropped a {}-byte transmit chain (needs {}..{})", name(), total, header_size_,
                 header_size_ + net::kMaxFrame);
      EMBER_TRY(q.pushUsed(bufs.head, 0));
      pushed = true;
      return true;
    }
    iov.clear();
    for (const auto& s : bufs.readable) {
      EMBER_TRY(mem.toIovecs(GuestAddress(s.addr), s.len, iov));
    }
    ssize_t n = ::writev(tap_.fd(), iov.data(), static_cast<int>(iov.size()));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return false;
    }
    if (n < 0) {
      ++stats_.tx_dropped;  // EIO and friends: the frame is lost, the queue goes on
      ++stats_.tx_errors;
      log::debug("{}: tap write failed: {}", name(), std::strerror(errno));
    } else {
      ++stats_.tx_frames;
      stats_.tx_bytes += total - header_size_;
    }
    EMBER_TRY(q.pushUsed(bufs.head, 0));
    pushed = true;
    return true;
  };

  // Pops by hand rather than with drainAvailable: once the tap pushes back (EAGAIN) no further
  // chain may be taken, or it would be neither sent nor returned.
  auto run = [&]() -> Result<void> {
    if (tx_pending_) {
      if (!EMBER_TRY(send(*tx_pending_))) {
        return {};  // still blocked: wait for EPOLLOUT
      }
      tx_pending_.reset();
    }
    for (;;) {
      auto chain = EMBER_TRY(q.pop());
      if (!chain) {
        if (q.inFlight() >= q.size() || !EMBER_TRY(q.armNotification())) {
          return {};
        }
        continue;  // buffers raced in while notifications were being re-armed
      }
      auto bufs = collectOrReturn(q, *chain);
      if (!bufs) {
        ++stats_.tx_dropped;
        pushed = true;
        return std::move(bufs).error();
      }
      if (!EMBER_TRY(send(*bufs))) {
        tx_pending_ = std::move(*bufs);
        return {};
      }
    }
  };
  Result<void> r = run();
  if (pushed) {
    act_->host->queueUsed(kTxQueue, q);
  }
  if (!r) {
    act_->host->needsReset(r.error().message);
  }
}

bool VirtioNet::deliverPendingLocked() {
  SplitQueue& q = *act_->queue(kRxQueue);
  const GuestMemory& mem = *act_->memory;
  size_t need = header_size_ + rx_frame_len_;
  auto capacity = [&] {
    uint64_t c = 0;
    for (const auto& b : rx_chains_) c += b.writableBytes();
    return c;
  };
  // Gather chains until the frame fits (one chain only without mergeable buffers).
  while (capacity() < need) {
    if (!mergeable_ && !rx_chains_.empty()) {
      break;
    }
    auto chain = q.pop();
    if (!chain) {
      act_->host->needsReset(chain.error().message);
      return false;
    }
    if (!*chain) {
      // Out of receive buffers. With EVENT_IDX the driver kicks only past avail_event: publish
      // it (2.7.10), and use a buffer that raced in; otherwise stop polling the tap until the
      // guest's next receive kick.
      auto more = q.armNotification();
      if (more && *more) continue;
      rx_waiting_for_buffers_ = true;
      return false;
    }
    auto bufs = collectChain(**chain);
    if (!bufs) {
      (void)q.pushUsed((*chain)->head(), 0);
      act_->host->queueUsed(kRxQueue, q);
      act_->host->needsReset(bufs.error().message);
      return false;
    }
    rx_chains_.push_back(std::move(*bufs));
  }
  if (capacity() < need) {
    // Does not fit (hostile-guest case 33): drop the frame, hand the buffer back empty.
    ++stats_.rx_dropped;
    for (const auto& b : rx_chains_) (void)q.addUsed(b.head, 0);
    (void)q.publishUsed();
    rx_chains_.clear();
    rx_frame_len_ = 0;
    act_->host->queueUsed(kRxQueue, q);
    return true;
  }
  // 5.1.6.4: num_buffers (bytes 10-11 of the header) is the number of chains used.
  if (header_size_ == 12) {
    uint16_t num = static_cast<uint16_t>(mergeable_ ? 0 : 1);
    size_t left = need;
    for (const auto& b : rx_chains_) {
      if (left == 0) break;
      left -= std::min<uint64_t>(left, b.writableBytes());
      if (mergeable_) ++num;
    }
    storeLe<uint16_t>(std::span(rx_frame_).subspan(10, 2), num);
  }
  size_t off = 0;
  size_t used_chains = 0;
  for (const auto& b : rx_chains_) {
    if (off == need) break;
    uint32_t written = 0;
    for (const auto& s : b.writable) {
      size_t n = std::min<size_t>(s.len, need - off);
      if (n == 0) break;
      (void)mem.write(GuestAddress(s.addr), std::span<const uint8_t>(rx_frame_.data() + off, n));
      off += n;
      written += static_cast<uint32_t>(n);
    }
    (void)q.addUsed(b.head, written);
    ++used_chains;
  }
  // Chains taken but not needed go back empty (only possible with mergeable buffers).
  for (size_t i = used_chains; i < rx_chains_.size(); ++i) (void)q.addUsed(rx_chains_[i].head, 0);
  // One used-index update for the whole frame: a driver polling the ring never sees a header
  // whose num_buffers names chains that are not there yet.
  (void)q.publishUsed();
  rx_chains_.clear();
  ++stats_.rx_frames;
  stats_.rx_bytes += rx_frame_len_;
  rx_frame_len_ = 0;
  return true;
}

void VirtioNet::receiveLocked() {
  bool delivered = false;
  for (int budget = 0; budget < 256; ++budget) {
    if (rx_frame_len_ == 0) {
      // The frame lands after room for the header the guest sees; the tap's vnet header (same
      // size, set at activation) comes first in what read() returns.
      ssize_t n = ::read(tap_.fd(), rx_frame_.data(), rx_frame_.size());
      if (n < 0) {
        break;  // EAGAIN: nothing more; other errors: retry on the next event
      }
      if (static_cast<size_t>(n) < header_size_) {
        ++stats_.rx_dropped;
        continue;
      }
      rx_frame_len_ = static_cast<size_t>(n) - header_size_;
    }
    if (!deliverPendingLocked()) {
      break;
    }
    delivered = true;
  }
  if (delivered) {
    act_->host->queueUsed(kRxQueue, *act_->queue(kRxQueue));
  }
}

QueueSet VirtioNet::reset() {
  std::lock_guard lock(mutex_);
  if (vhost_ && act_) vhost_->stop(*act_->host, name());
  QueueSet queues = releaseQueues(act_);
  rx_chains_.clear();
  rx_frame_len_ = 0;
  tx_pending_.reset();
  rx_waiting_for_buffers_ = false;
  updateTapEventsLocked();
  if (tap_reg_.active()) {
    (void)tap_reg_.setEvents(0);
    tap_events_ = 0;
  }
  return queues;
}

Result<QueuePositions> VirtioNet::saveState(StateWriter& w) {
  std::lock_guard lock(mutex_);
  if (vhost_) {
    return makeError(Errc::Unsupported,
                     "{}: a vhost-net device cannot be snapshotted (its rings are the kernel's); "
                     "use vhost=off",
                     name());
  }
  QueuePositions positions = queuePositions(act_);
  if (act_) {
    if (positions[kRxQueue]) {
      positions[kRxQueue]->next_avail =
          static_cast<uint16_t>(positions[kRxQueue]->next_avail - rx_chains_.size());
    }
    if (positions[kTxQueue] && tx_pending_) --positions[kTxQueue]->next_avail;
  }
  // The frame read from the tap and not yet delivered, with the vnet header before it.
  size_t frame = act_ && rx_frame_len_ != 0 ? header_size_ + rx_frame_len_ : 0;
  w.blob(std::span<const uint8_t>(rx_frame_.data(), frame));
  return positions;
}

void VirtioNet::loadState(StateReader& r) {
  std::lock_guard lock(mutex_);
  auto frame = r.blob("waiting receive frame", rx_frame_.size());
  if (!r.ok() || frame.empty()) return;
  if (!act_ || frame.size() <= header_size_) {
    r.fail("waiting receive frame",
           act_ ? "is no longer than its header" : "but the device is off");
    return;
  }
  std::copy(frame.begin(), frame.end(), rx_frame_.begin());
  rx_frame_len_ = frame.size() - header_size_;
}

}  // namespace ember::devices
