// virtio-blk request processing.
#include "devices/VirtioBlock.h"

#include <algorithm>
#include <cerrno>
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
                   kFeatureBlkSize = 1ULL << 6, kFeatureFlush = 1ULL << 9;
constexpr uint64_t kMaxWarnings = 20;
}  // namespace

Result<std::unique_ptr<VirtioBlock>> VirtioBlock::create(BlockFile file, std::string serial,
                                                         EventLoop* loop, BlockEngineKind engine) {
  if (serial.size() > blk::kIdBytes) {
    return makeError(Errc::InvalidArgument, "--disk {}: serial '{}' is longer than 20 bytes",
                     file.path(), serial);
  }
  // The engine first: the device's destructor relies on having one.
  auto aio = createBlockEngine(engine, kQueueSize);
  if (!aio) {
    return makeError(aio.error().code, "--disk {},aio={}: {}", file.path(), blockEngineName(engine),
                     aio.error().message);
  }
  std::unique_ptr<VirtioBlock> dev(new VirtioBlock(std::move(file), std::move(serial)));
  dev->aio_ = std::move(*aio);
  dev->completions_.reserve(kQueueSize);
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
  storeLe<uint64_t>(std::span(image).subspan(0, 8), file_.sizeBytes() / blk::kSectorSize);
  storeLe<uint32_t>(std::span(image).subspan(8, 4), kSizeMax);
  storeLe<uint32_t>(std::span(image).subspan(12, 4), kSegMax);
  storeLe<uint32_t>(std::span(image).subspan(20, 4), blk::kSectorSize);
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
  submitLocked();
  // Requests the kernel finished inside the submission (page-cache hits, tmpfs, aio=sync) are
  // completed now, without a trip through the eventfd and the event loop.
  if (outstanding_ > 0) {
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
  slot.iov.clear();
  slot.flush = io.type == blk::kTypeFlush;
  if (slot.flush) {
    slot.write = false;
    slot.sector = 0;
    slot.expected = 0;
    slot.used_len = 1;
    if (outstanding_ > 0) {
      // Writes completed to the guest before the flush must be covered: wait for what is in
      // flight (the flush is issued when the engine has nothing outstanding).
      deferred_flushes_.push_back(index);
    } else {
      aio_->enqueue(BlockEngineRequest{index, BlockOp::Flush, file_.bufferedFd(), {}, 0});
      ++outstanding_;
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
  aio_->enqueue(BlockEngineRequest{index, slot.write ? BlockOp::Write : BlockOp::Read, fd, slot.iov,
                                   io.sector * blk::kSectorSize});
  ++outstanding_;
  return {};
}

void VirtioBlock::submitLocked() {
  aio_->submit();
}

void VirtioBlock::finishSlotLocked(Slot& slot, int64_t result) {
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
  completeLocked(slot.head, slot.status_addr, status, status == blk::kStatusOk ? slot.used_len : 1);
  slot.busy = false;
  free_slots_.push_back(static_cast<uint16_t>(&slot - slots_.data()));
}

bool VirtioBlock::reapLocked() {
  completions_.clear();
  aio_->reap(completions_);
  for (const auto& c : completions_) {
    --outstanding_;
    finishSlotLocked(slots_[c.tag], c.result);
  }
  if (outstanding_ == 0 && !deferred_flushes_.empty()) {
    // Everything before the flushes has completed: issue them (their completions come in a
    // later round).
    for (uint16_t index : deferred_flushes_) {
      aio_->enqueue(BlockEngineRequest{index, BlockOp::Flush, file_.bufferedFd(), {}, 0});
      ++outstanding_;
    }
    deferred_flushes_.clear();
    submitLocked();
  }
  return !completions_.empty();
}

void VirtioBlock::processCompletions() {
  std::lock_guard lock(mutex_);
  if (!act_) {
    completions_.clear();
    aio_->reap(completions_);  // reset raced: results are discarded
    return;
  }
  bool completed = reapLocked();
  submitLocked();
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
  aio_->drain();
  outstanding_ = 0;
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
