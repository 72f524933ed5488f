// virtio-blk request processing.
#include "devices/VirtioBlock.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kvm/Log.h"
#include "virtio/QueueProcessing.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

namespace {
// 5.2.3 feature bits.
constexpr uint64_t kFeatureSizeMax = 1ULL << 1, kFeatureSegMax = 1ULL << 2, kFeatureRo = 1ULL << 5,
                   kFeatureBlkSize = 1ULL << 6, kFeatureFlush = 1ULL << 9;
constexpr uint64_t kMaxWarnings = 20;
}  // namespace

Result<std::unique_ptr<VirtioBlock>> VirtioBlock::create(BlockFile file, std::string serial,
                                                         EventLoop* loop) {
  if (serial.size() > blk::kIdBytes) {
    return makeError(Errc::InvalidArgument, "--disk {}: serial '{}' is longer than 20 bytes",
                     file.path(), serial);
  }
  std::unique_ptr<VirtioBlock> dev(new VirtioBlock(std::move(file), std::move(serial)));
  dev->aio_ = EMBER_TRY(AioEngine::create(kQueueSize));
  if (loop != nullptr) {
    auto* raw = dev.get();
    dev->completion_reg_ = EMBER_TRY(
        loop->add(dev->aio_->eventFd(), EPOLLIN, [raw](uint32_t) { raw->processCompletions(); }));
  }
  return dev;
}

VirtioBlock::VirtioBlock(BlockFile file, std::string serial)
    : file_(std::move(file)), serial_(std::move(serial)), slots_(kQueueSize) {
  for (uint16_t i = 0; i < kQueueSize; ++i) {
    free_slots_.push_back(static_cast<uint16_t>(kQueueSize - 1 - i));
  }
}

VirtioBlock::~VirtioBlock() {
  reset();
  completion_reg_.reset();
  (void)file_.sync();  // whatever the guest wrote is on disk when ember exits
}

std::string VirtioBlock::name() const {
  return "virtio-blk " + file_.path();
}

uint16_t VirtioBlock::deviceType() const {
  return device_type::kBlock;
}

uint64_t VirtioBlock::features() const {
  return kFeatureSizeMax | kFeatureSegMax | kFeatureBlkSize | kFeatureFlush |
         (file_.readOnly() ? kFeatureRo : 0) | feature::kIndirectDesc | feature::kEventIdx;
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
  // 5.2.4 struct virtio_blk_config: capacity (512-byte sectors), size_max, seg_max, geometry,
  // blk_size, topology (zero: no hints), writeback, unused, num_queues.
  uint8_t image[36] = {};
  uint64_t capacity = file_.sizeBytes() / blk::kSectorSize;
  uint32_t size_max = kSizeMax, seg_max = kSegMax, blk_size = blk::kSectorSize;
  std::memcpy(image + 0, &capacity, 8);
  std::memcpy(image + 8, &size_max, 4);
  std::memcpy(image + 12, &seg_max, 4);
  std::memcpy(image + 20, &blk_size, 4);
  readConfigBytes(image, offset, data);
}

Result<void> VirtioBlock::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  if (activation.queue(0) == nullptr) {
    return makeError(Errc::Guest, "virtio-blk activated without its request queue");
  }
  act_ = std::move(activation);
  return {};
}

void VirtioBlock::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (act_ && queue == 0) {
    processLocked();
  }
}

void VirtioBlock::warnLocked(const std::string& what) {
  // The guest controls how often this happens: log the first few, then only count.
  if (++warnings_ <= kMaxWarnings) {
    log::warn("{}: {}{}", name(), what,
              warnings_ == kMaxWarnings ? " (further warnings suppressed)" : "");
  }
}

void VirtioBlock::processLocked() {
  SplitQueue& q = *act_->queue(0);
  auto r = drainAvailable(q, [&](DescriptorChain& chain) { return handleChainLocked(chain); });
  ring_blocked_ = q.inFlight() >= q.size();  // chains left waiting for in-flight room
  submitPendingLocked();
  // Requests the kernel finished inside io_submit (page-cache hits, tmpfs) are completed now,
  // without a trip through the eventfd and the event loop.
  if (submitted_ > 0) {
    reapLocked();
  }
  if (pushed_) {
    pushed_ = false;
    act_->host->queueUsed(0, q);
  }
  if (!r) {
    act_->host->needsReset(r.error().message);
  }
}

void VirtioBlock::completeLocked(uint16_t head, uint64_t status_addr, uint8_t status,
                                 uint32_t used_len) {
  const GuestMemory& mem = *act_->memory;
  if (status_addr != 0) {
    (void)mem.writeObj(GuestAddress(status_addr), status);
  }
  if (auto r = act_->queue(0)->pushUsed(head, used_len); !r) {
    act_->host->needsReset(r.error().message);
  }
  pushed_ = true;
  ++completed_;
}

Result<void> VirtioBlock::handleChainLocked(DescriptorChain& chain) {
  auto bufs = collectChain(chain);
  if (!bufs) {
    // Return the chain so the queue cannot stall, then report the broken ring.
    completeLocked(chain.head(), 0, 0, 0);
    return std::move(bufs).error();
  }
  const GuestMemory& mem = *act_->memory;
  BlockLimits limits{file_.sizeBytes() / blk::kSectorSize, file_.readOnly(), kSegMax, kSizeMax};
  BlockOutcome outcome = parseBlockRequest(*bufs, mem, limits);

  if (auto* reject = std::get_if<BlockReject>(&outcome)) {
    warnLocked("rejected request: " + reject->reason);
    ++rejected_;
    completeLocked(bufs->head, 0, 0, 0);
    return {};
  }
  if (auto* st = std::get_if<BlockStatus>(&outcome)) {
    warnLocked("request failed: " + st->reason);
    ++failed_;
    completeLocked(bufs->head, st->status_addr, st->status, 1);
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
      completeLocked(bufs->head, io.status_addr, blk::kStatusOk, static_cast<uint32_t>(done + 1));
      return {};
    }
    case blk::kTypeFlush:
      if (submitted_ + pending_.size() > 0) {
        // Writes completed to the guest before the flush must be covered: wait for what is in
        // flight (by running the flush when the queue drains).
        deferred_flushes_.emplace_back(bufs->head, io.status_addr);
      } else {
        flushLocked(bufs->head, io.status_addr);
      }
      return {};
    default:
      break;
  }
  if (free_slots_.empty()) {
    // Cannot happen: in-flight chains are capped at the queue size, as are slots.
    completeLocked(bufs->head, io.status_addr, blk::kStatusIoErr, 1);
    return {};
  }
  uint16_t index = free_slots_.back();
  free_slots_.pop_back();
  Slot& slot = slots_[index];
  slot.busy = true;
  slot.head = bufs->head;
  slot.status_addr = io.status_addr;
  slot.write = io.type == blk::kTypeOut;
  slot.sector = io.sector;
  slot.expected = io.data_len;
  slot.used_len = slot.write ? 1 : static_cast<uint32_t>(io.data_len + 1);
  slot.iov.clear();
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
  aio_->prepare(&slot.cb, fd, slot.write, slot.iov, io.sector * blk::kSectorSize);
  slot.cb.data = &slot;  // completion -> slot
  pending_.push_back(&slot.cb);
  return {};
}

void VirtioBlock::submitPendingLocked() {
  while (!pending_.empty()) {
    auto n = aio_->submit(pending_);
    if (!n) {
      // io_submit(2) submits a batch up to the first iocb it refuses, and reports an error only
      // when that is the first one: fail that request alone and go on with the rest.
      warnLocked("cannot submit I/O: " + n.error().message);
      finishSlotLocked(*static_cast<Slot*>(pending_.front()->data), -n.error().sys_errno);
      pending_.erase(pending_.begin());
      continue;
    }
    if (*n == 0) {
      // EAGAIN: the kernel is out of AIO resources. A completion retries the rest; with nothing
      // in flight none would come and the queue would hang, so the request fails instead.
      if (submitted_ > 0) {
        return;
      }
      warnLocked("cannot submit I/O: the kernel has no AIO resources and nothing is in flight");
      finishSlotLocked(*static_cast<Slot*>(pending_.front()->data), -EAGAIN);
      pending_.erase(pending_.begin());
      continue;
    }
    submitted_ += *n;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(*n));
  }
}

void VirtioBlock::finishSlotLocked(Slot& slot, int64_t result) {
  uint8_t status = blk::kStatusOk;
  if (result < 0 || static_cast<uint64_t>(result) != slot.expected) {
    status = blk::kStatusIoErr;
    ++failed_;
    warnLocked(fmt::format("{} of {} bytes at sector {} failed: {}", slot.write ? "write" : "read",
                           slot.expected, slot.sector,
                           result < 0 ? std::strerror(static_cast<int>(-result))
                                      : fmt::format("short transfer of {} bytes", result)));
  } else {
    bytes_ += slot.expected;
  }
  completeLocked(slot.head, slot.status_addr, status, status == blk::kStatusOk ? slot.used_len : 1);
  slot.busy = false;
  free_slots_.push_back(static_cast<uint16_t>(&slot - slots_.data()));
}

void VirtioBlock::flushLocked(uint16_t head, uint64_t status_addr) {
  auto r = file_.sync();
  if (!r) {
    warnLocked(r.error().message);
    ++failed_;
  }
  completeLocked(head, status_addr, r ? blk::kStatusOk : blk::kStatusIoErr, 1);
}

bool VirtioBlock::reapLocked() {
  auto done = aio_->reap();
  for (const auto& c : done) {
    --submitted_;
    finishSlotLocked(*static_cast<Slot*>(c.cb->data), c.result);
  }
  if (submitted_ + pending_.size() == 0 && !deferred_flushes_.empty()) {
    for (auto [head, status_addr] : deferred_flushes_) {
      flushLocked(head, status_addr);
    }
    deferred_flushes_.clear();
  }
  return !done.empty();
}

void VirtioBlock::processCompletions() {
  std::lock_guard lock(mutex_);
  if (!act_) {
    submitted_ -= std::min(submitted_, aio_->reap().size());
    return;  // reset raced: results are discarded
  }
  bool completed = reapLocked();
  submitPendingLocked();
  // Chains may have been waiting for free in-flight room; otherwise just signal the completions.
  if (completed && ring_blocked_ && act_->host->mayProcess()) {
    processLocked();
  } else if (pushed_) {
    pushed_ = false;
    act_->host->queueUsed(0, *act_->queue(0));
  }
}

QueueSet VirtioBlock::reset() {
  std::lock_guard lock(mutex_);
  // In-flight requests are waited for and their results discarded: after this returns nothing
  // is written to guest memory (hostile-guest case 25).
  if (submitted_ > 0) {
    aio_->wait(submitted_);
  }
  submitted_ = 0;
  pending_.clear();
  deferred_flushes_.clear();
  free_slots_.clear();
  for (uint16_t i = 0; i < kQueueSize; ++i) {
    slots_[i].busy = false;
    free_slots_.push_back(static_cast<uint16_t>(kQueueSize - 1 - i));
  }
  pushed_ = false;
  ring_blocked_ = false;
  return releaseQueues(act_);
}

}  // namespace ember::devices
