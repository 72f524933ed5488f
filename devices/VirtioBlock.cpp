// virtio-blk request processing.
#include "devices/VirtioBlock.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "virtio/QueueProcessing.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

namespace {
// 5.2.3 feature bits.
constexpr uint64_t kFeatureSizeMax = 1ULL << 1, kFeatureSegMax = 1ULL << 2, kFeatureRo = 1ULL << 5,
                   kFeatureBlkSize = 1ULL << 6, kFeatureFlush = 1ULL << 9, kFeatureMq = 1ULL << 12;
constexpr uint64_t kMaxWarnings = 20;
}  // namespace

Result<std::unique_ptr<VirtioBlock>> VirtioBlock::create(BlockFile file, std::string serial,
                                                         EventLoop* loop, BlockEngineKind engine,
                                                         uint16_t num_queues) {
  if (serial.size() > blk::kIdBytes) {
    return makeError(Errc::InvalidArgument, "--disk {}: serial '{}' is longer than 20 bytes",
                     file.path(), serial);
  }
  if (num_queues < 1 || num_queues > kMaxQueues) {
    return makeError(Errc::InvalidArgument, "--disk {}: num-queues must be 1 to {}, not {}",
                     file.path(), kMaxQueues, num_queues);
  }
  // The engines first: the device's destructor relies on having them.
  std::vector<std::unique_ptr<RequestQueue>> queues;
  for (uint16_t q = 0; q < num_queues; ++q) {
    auto aio = createBlockEngine(engine, kQueueSize);
    if (!aio) {
      return makeError(aio.error().code, "--disk {},aio={}: {}", file.path(),
                       blockEngineName(engine), aio.error().message);
    }
    auto rq = std::make_unique<RequestQueue>();
    rq->index = q;
    rq->aio = std::move(*aio);
    rq->slots.resize(kQueueSize);
    for (uint16_t i = 0; i < kQueueSize; ++i) {
      rq->free_slots.push_back(static_cast<uint16_t>(kQueueSize - 1 - i));
    }
    rq->completions.reserve(kQueueSize);
    queues.push_back(std::move(rq));
  }
  std::unique_ptr<VirtioBlock> dev(new VirtioBlock(std::move(file), std::move(serial)));
  dev->queues_ = std::move(queues);
  if (loop != nullptr) {
    auto* raw = dev.get();
    for (auto& rq : dev->queues_) {
      auto* q = rq.get();
      rq->completion_reg = EMBER_TRY(loop->add(rq->aio->eventFd(), EPOLLIN, [raw, q](uint32_t) {
        std::lock_guard lock(raw->mutex_);
        raw->processCompletionsLocked(*q);
      }));
    }
  }
  return dev;
}

VirtioBlock::VirtioBlock(BlockFile file, std::string serial)
    : file_(std::move(file)),
      path_(file_.path()),
      read_only_(file_.readOnly()),
      serial_(std::move(serial)) {}

VirtioBlock::~VirtioBlock() {
  reset();
  for (auto& rq : queues_) {
    rq->completion_reg.reset();
  }
  (void)file_.sync();  // whatever the guest wrote is on disk when ember exits
}

std::string VirtioBlock::name() const {
  std::lock_guard lock(name_mutex_);
  return "virtio-blk " + path_;
}

uint16_t VirtioBlock::deviceType() const {
  return device_type::kBlock;
}

uint64_t VirtioBlock::features() const {
  return kFeatureSizeMax | kFeatureSegMax | kFeatureBlkSize | kFeatureFlush |
         (read_only_ ? kFeatureRo : 0) | kFeatureMq | feature::kIndirectDesc | feature::kEventIdx;
}

uint64_t VirtioBlock::failedRequests() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

DeviceCounters VirtioBlock::counters() const {
  std::lock_guard lock(mutex_);
  return DeviceCounters{completed_, bytes_, failed_ + rejected_, 0};
}

void VirtioBlock::readConfig(uint32_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);  // the capacity changes with the medium
  // 5.2.4 struct virtio_blk_config: capacity (512-byte sectors), size_max, seg_max, geometry,
  // blk_size, topology (zero: no hints), writeback, unused, num_queues.
  uint8_t image[36] = {};
  storeLe<uint64_t>(std::span(image).subspan(0, 8), file_.sizeBytes() / blk::kSectorSize);
  storeLe<uint32_t>(std::span(image).subspan(8, 4), kSizeMax);
  storeLe<uint32_t>(std::span(image).subspan(12, 4), kSegMax);
  storeLe<uint32_t>(std::span(image).subspan(20, 4), blk::kSectorSize);
  storeLe<uint16_t>(std::span(image).subspan(34, 2), queueCount());
  readConfigBytes(image, offset, data);
}

Result<void> VirtioBlock::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  if (activation.queue(0) == nullptr) {
    return makeError(Errc::Guest, "virtio-blk activated without its request queue");
  }
  if ((activation.features & kFeatureMq) == 0) {
    for (uint16_t q = 1; q < queueCount(); ++q) {
      if (activation.queue(q) != nullptr) {
        // 5.2.2: without VIRTIO_BLK_F_MQ only requestq1 exists; a ring set up anyway is not
        // served (its kicks are ignored).
        warnLocked(fmt::format("queue {} enabled without VIRTIO_BLK_F_MQ: not served", q));
      }
    }
  }
  act_ = std::move(activation);
  return {};
}

SplitQueue* VirtioBlock::liveQueueLocked(uint16_t index) {
  if (!act_ || index >= queueCount() || (index > 0 && (act_->features & kFeatureMq) == 0)) {
    return nullptr;
  }
  return act_->queue(index);  // null when the driver left it disabled
}

void VirtioBlock::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  // A kick for a queue the device does not have, one the driver left disabled, or one past
  // requestq1 without VIRTIO_BLK_F_MQ does nothing (docs/security.md, Ember's own cases:
  // virtio-blk request queues).
  if (liveQueueLocked(queue) != nullptr) {
    processLocked(*queues_[queue]);
  }
}

void VirtioBlock::warnLocked(const std::string& what) {
  // The guest controls how often this happens: log the first few, then only count.
  if (++warnings_ <= kMaxWarnings) {
    log::warn("{}: {}{}", name(), what,
              warnings_ == kMaxWarnings ? " (further warnings suppressed)" : "");
  }
}

void VirtioBlock::processLocked(RequestQueue& rq) {
  SplitQueue& q = *act_->queue(rq.index);
  Result<void> r;
  for (;;) {
    uint16_t before = q.nextAvail();
    r = drainAvailable(q, [&](DescriptorChain& chain) { return handleChainLocked(rq, chain); });
    rq.ring_blocked = q.inFlight() >= q.size();  // chains left waiting for in-flight room
    rq.aio->submit();
    // Requests the kernel finished inside the submission (page-cache hits, tmpfs, aio=sync) are
    // completed now, without a trip through the eventfd and the event loop.
    if (rq.outstanding > 0) {
      reapLocked(rq);
    }
    // Completions reaped here free in-flight room that no later completion event will report:
    // chains still waiting for it are taken now, or they would wait for a kick that the driver
    // need not send (2.7.10). Each round takes at least one chain, so this ends.
    if (!r || !rq.ring_blocked || q.inFlight() >= q.size() || q.nextAvail() == before) {
      break;
    }
  }
  if (rq.pushed) {
    rq.pushed = false;
    act_->host->queueUsed(rq.index, q);
  }
  if (!r) {
    act_->host->needsReset(r.error().message);
  }
}

void VirtioBlock::completeLocked(RequestQueue& rq, uint16_t head, uint64_t status_addr,
                                 uint8_t status, uint32_t used_len) {
  const GuestMemory& mem = *act_->memory;
  if (status_addr != 0) {
    (void)mem.writeObj(GuestAddress(status_addr), status);
  }
  if (auto r = act_->queue(rq.index)->pushUsed(head, used_len); !r) {
    act_->host->needsReset(r.error().message);
  }
  rq.pushed = true;
  ++completed_;
}

Result<void> VirtioBlock::handleChainLocked(RequestQueue& rq, DescriptorChain& chain) {
  auto bufs = collectChain(chain);
  if (!bufs) {
    // Return the chain so the queue cannot stall, then report the broken ring.
    completeLocked(rq, chain.head(), 0, 0, 0);
    return std::move(bufs).error();
  }
  const GuestMemory& mem = *act_->memory;
  BlockLimits limits{file_.sizeBytes() / blk::kSectorSize, file_.readOnly(), kSegMax, kSizeMax};
  BlockOutcome outcome = parseBlockRequest(*bufs, mem, limits);

  if (auto* reject = std::get_if<BlockReject>(&outcome)) {
    warnLocked("rejected request: " + reject->reason);
    ++rejected_;
    completeLocked(rq, bufs->head, 0, 0, 0);
    return {};
  }
  if (auto* st = std::get_if<BlockStatus>(&outcome)) {
    warnLocked("request failed: " + st->reason);
    ++failed_;
    completeLocked(rq, bufs->head, st->status_addr, st->status, 1);
    return {};
  }
  auto& io = std::get<BlockIo>(outcome);
  switch (io.type) {
    case blk::kTypeGetId: {
      // 5.2.6.1: up to 20 bytes, NUL-padded when shorter.
      uint8_t id[blk::kIdBytes] = {};
      std::memcpy(id, serial_.data(), std::min<size_t>(serial_.size(), sizeof id));
      size_t done = 0;
      for (const auto& seg : io.data) {
        size_t n = std::min<size_t>(seg.len, sizeof id - done);
        if (n == 0) break;
        EMBER_TRY(mem.write(GuestAddress(seg.addr), std::span<const uint8_t>(id + done, n)));
        done += n;
      }
      bytes_ += done;
      completeLocked(rq, bufs->head, io.status_addr, blk::kStatusOk,
                     static_cast<uint32_t>(done + 1));
      return {};
    }
    default:
      break;
  }
  if (rq.free_slots.empty()) {
    // Cannot happen: in-flight chains are capped at the queue size, as are slots.
    completeLocked(rq, bufs->head, io.status_addr, blk::kStatusIoErr, 1);
    return {};
  }
  uint16_t index = rq.free_slots.back();
  rq.free_slots.pop_back();
  Slot& slot = rq.slots[index];
  slot.busy = true;
  slot.head = bufs->head;
  slot.status_addr = io.status_addr;
  slot.iov.clear();
  slot.flush = io.type == blk::kTypeFlush;
  if (slot.flush) {
    slot.write = false;
    slot.sector = 0;
    slot.expected = 0;
    slot.used_len = 1;
    if (rq.outstanding > 0) {
      // Writes completed to the guest before the flush must be covered: wait for what is in
      // flight on this queue (the flush is issued when its engine has nothing outstanding).
      rq.deferred_flushes.push_back(index);
    } else {
      rq.aio->enqueue(BlockEngineRequest{index, BlockOp::Flush, file_.bufferedFd(), {}, 0});
      ++rq.outstanding;
    }
    return {};
  }
  slot.write = io.type == blk::kTypeOut;
  slot.sector = io.sector;
  slot.expected = io.data_len;
  slot.used_len = slot.write ? 1 : static_cast<uint32_t>(io.data_len + 1);
  for (const auto& seg : io.data) {
    EMBER_TRY(mem.toIovecs(GuestAddress(seg.addr), seg.len, slot.iov));
  }
  int fd = file_.bufferedFd();
  if (uint32_t align = file_.directAlignment(); file_.directFd() >= 0) {
    bool aligned = (io.sector * blk::kSectorSize) % align == 0;
    for (const auto& v : slot.iov) {
      aligned &= reinterpret_cast<uintptr_t>(v.iov_base) % align == 0 && v.iov_len % align == 0;
    }
    if (aligned) fd = file_.directFd();
  }
  rq.aio->enqueue(BlockEngineRequest{index, slot.write ? BlockOp::Write : BlockOp::Read, fd,
                                     slot.iov, io.sector * blk::kSectorSize});
  ++rq.outstanding;
  return {};
}

void VirtioBlock::finishSlotLocked(RequestQueue& rq, Slot& slot, int64_t result) {
  uint8_t status = blk::kStatusOk;
  if (slot.flush && result < 0) {
    status = blk::kStatusIoErr;
    ++failed_;
    warnLocked(fmt::format("flush failed: fdatasync {}: {}", file_.path(),
                           std::strerror(static_cast<int>(-result))));
  } else if (!slot.flush && (result < 0 || static_cast<uint64_t>(result) != slot.expected)) {
    status = blk::kStatusIoErr;
    ++failed_;
    warnLocked(fmt::format("{} of {} bytes at sector {} failed: {}", slot.write ? "write" : "read",
                           slot.expected, slot.sector,
                           result < 0 ? std::strerror(static_cast<int>(-result))
                                      : fmt::format("short transfer of {} bytes", result)));
  } else {
    bytes_ += slot.expected;
  }
  completeLocked(rq, slot.head, slot.status_addr, status,
                 status == blk::kStatusOk ? slot.used_len : 1);
  slot.busy = false;
  rq.free_slots.push_back(static_cast<uint16_t>(&slot - rq.slots.data()));
}

bool VirtioBlock::reapLocked(RequestQueue& rq) {
  rq.completions.clear();
  rq.aio->reap(rq.completions);
  for (const auto& c : rq.completions) {
    --rq.outstanding;
    finishSlotLocked(rq, rq.slots[c.tag], c.result);
  }
  if (rq.outstanding == 0 && !rq.deferred_flushes.empty()) {
    // Everything before the flushes has completed: issue them (their completions come in a
    // later round).
    for (uint16_t index : rq.deferred_flushes) {
      rq.aio->enqueue(BlockEngineRequest{index, BlockOp::Flush, file_.bufferedFd(), {}, 0});
      ++rq.outstanding;
    }
    rq.deferred_flushes.clear();
    rq.aio->submit();
  }
  return !rq.completions.empty();
}

void VirtioBlock::processCompletions() {
  std::lock_guard lock(mutex_);
  for (auto& rq : queues_) {
    processCompletionsLocked(*rq);
  }
}

void VirtioBlock::processCompletionsLocked(RequestQueue& rq) {
  if (!act_ || act_->queue(rq.index) == nullptr) {
    rq.completions.clear();
    rq.aio->reap(rq.completions);  // reset raced: results are discarded
    return;
  }
  // Every completion this round collects is pushed first, then the used ring is signalled once
  // (queueUsed applies EVENT_IDX / VRING_AVAIL_F_NO_INTERRUPT): one interrupt per batch.
  bool completed = reapLocked(rq);
  rq.aio->submit();
  // Chains may have been waiting for free in-flight room; otherwise just signal the completions.
  if (completed && rq.ring_blocked && act_->host->mayProcess()) {
    processLocked(rq);
  } else if (rq.pushed) {
    rq.pushed = false;
    act_->host->queueUsed(rq.index, *act_->queue(rq.index));
  }
}

Result<void> VirtioBlock::finishInFlightLocked(RequestQueue& rq) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kDrainTimeoutMs);
  reapLocked(rq);
  while (rq.outstanding > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      return makeError(Errc::Busy, "{} request(s) in flight on {} did not finish within {} ms",
                       rq.outstanding, file_.path(), kDrainTimeoutMs);
    }
    // The engine's eventfd, which the event loop also watches (its callback waits for mutex_,
    // then finds nothing left to reap).
    pollfd p{rq.aio->eventFd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
      return Error::fromErrno(Errc::Io, "poll on the block engine's eventfd");
    }
    reapLocked(rq);  // also issues the flushes that waited for these requests
  }
  if (rq.pushed) {
    rq.pushed = false;
    act_->host->queueUsed(rq.index, *act_->queue(rq.index));
  }
  return okResult();
}

Result<void> VirtioBlock::replaceMedium(BlockFile file) {
  std::lock_guard lock(mutex_);
  if (file.readOnly() != read_only_) {
    // VIRTIO_BLK_F_RO was negotiated with the old medium's setting.
    return makeError(Errc::InvalidArgument, "the new medium must be {} like the old one",
                     read_only_ ? "read-only" : "writable");
  }
  // No new request is taken while mutex_ is held; those in flight finish on the old medium.
  for (auto& rq : queues_) {
    if (act_ && act_->queue(rq->index) != nullptr) {
      if (auto r = finishInFlightLocked(*rq); !r) {
        return makeError(r.error().code, "{}; the medium is unchanged", r.error().message);
      }
    }
  }
  EMBER_TRY(file_.sync());  // every write the guest was told is done is on the old medium
  std::string old_path = file_.path();
  uint64_t old_bytes = file_.sizeBytes();
  file_ = std::move(file);
  {
    std::lock_guard name_lock(name_mutex_);
    path_ = file_.path();
  }
  log::info("virtio-blk {}: medium changed to {} ({} bytes, was {})", old_path, file_.path(),
            file_.sizeBytes(), old_bytes);
  if (act_) {
    act_->host->configChanged();  // 5.2.4 capacity; 4.1.4.3 config_generation
    // Chains that waited for in-flight room freed above go to the new medium now.
    for (auto& rq : queues_) {
      if (rq->ring_blocked && liveQueueLocked(rq->index) != nullptr && act_->host->mayProcess()) {
        processLocked(*rq);
      }
    }
  }
  return okResult();
}

Result<QueuePositions> VirtioBlock::saveState(StateWriter& /*w*/) {
  std::lock_guard lock(mutex_);
  // 5.2.6: every request the device took completes before its position is saved, so the
  // restored device owes the driver nothing; what the guest was told is written is then synced.
  for (auto& rq : queues_) {
    if (act_ && act_->queue(rq->index) != nullptr) EMBER_TRY(finishInFlightLocked(*rq));
  }
  if (!read_only_) EMBER_TRY(file_.sync());
  // Nothing of its own: the medium is the machine's configuration, the queues the transport's.
  return virtio::queuePositions(act_);
}

QueueSet VirtioBlock::reset() {
  std::lock_guard lock(mutex_);
  // In-flight requests are waited for and their results discarded: after this returns nothing
  // is written to guest memory (hostile-guest case 25).
  for (auto& rq : queues_) {
    rq->aio->drain();
    rq->outstanding = 0;
    rq->deferred_flushes.clear();
    rq->free_slots.clear();
    for (uint16_t i = 0; i < kQueueSize; ++i) {
      rq->slots[i].busy = false;
      rq->free_slots.push_back(static_cast<uint16_t>(kQueueSize - 1 - i));
    }
    rq->pushed = false;
    rq->ring_blocked = false;
  }
  return releaseQueues(act_);
}

}  // namespace ember::devices
