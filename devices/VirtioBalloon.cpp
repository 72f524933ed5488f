// Balloon inflate/deflate/statistics processing.
#include "devices/VirtioBalloon.h"

#include <cstring>
#include <vector>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "virtio/QueueProcessing.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

namespace {
constexpr uint64_t kFeatureStatsVq = 1ULL << 1;       // VIRTIO_BALLOON_F_STATS_VQ
constexpr uint64_t kFeatureDeflateOnOom = 1ULL << 2;  // VIRTIO_BALLOON_F_DEFLATE_ON_OOM
constexpr uint32_t kMaxPfnsPerBuffer = 1u << 16;      // PFNs read from guest memory at a time
}  // namespace

VirtioBalloon::VirtioBalloon(uint64_t target_bytes, bool deflate_on_oom)
    : deflate_on_oom_(deflate_on_oom),
      target_pages_(static_cast<uint32_t>(target_bytes / kPageSize)) {}

uint16_t VirtioBalloon::deviceType() const {
  return device_type::kBalloon;
}

uint64_t VirtioBalloon::features() const {
  return kFeatureStatsVq | (deflate_on_oom_ ? kFeatureDeflateOnOom : 0) | feature::kIndirectDesc |
         feature::kEventIdx;
}

void VirtioBalloon::readConfig(uint32_t offset, std::span<uint8_t> data) {
  // 5.5.4 struct virtio_balloon_config: num_pages (target, device-set), actual (guest-set).
  uint8_t image[8];
  storeLe<uint32_t>(std::span(image).subspan(0, 4), target_pages_.load());
  storeLe<uint32_t>(std::span(image).subspan(4, 4), actual_.load());
  readConfigBytes(image, offset, data);
}

void VirtioBalloon::writeConfig(uint32_t offset, std::span<const uint8_t> data) {
  // Only `actual` (offset 4) is driver-writable.
  if (offset == 4 && data.size() == 4) {
    actual_ = loadLe<uint32_t>(data);
  }
}

BalloonStats VirtioBalloon::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void VirtioBalloon::setTargetBytes(uint64_t bytes) {
  target_pages_ = static_cast<uint32_t>(bytes / kPageSize);
  std::lock_guard lock(mutex_);
  if (act_) act_->host->configChanged();
}

std::optional<bool> VirtioBalloon::testAndSet(uint64_t pfn, bool value) {
  const auto& regions = act_->memory->regions();
  for (size_t i = 0; i < regions.size(); ++i) {
    uint64_t first = regions[i].start.raw / kPageSize;
    uint64_t count = regions[i].size / kPageSize;
    if (pfn < first || pfn - first >= count) continue;
    auto& bits = bitmaps_[i];
    uint64_t idx = pfn - first;
    uint64_t mask = 1ULL << (idx % 64);
    bool old = bits[idx / 64] & mask;
    bits[idx / 64] = value ? (bits[idx / 64] | mask) : (bits[idx / 64] & ~mask);
    return old;
  }
  return std::nullopt;  // not a page of RAM
}

Result<void> VirtioBalloon::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  bitmaps_.clear();
  for (const auto& r : activation.memory->regions()) {
    bitmaps_.emplace_back((r.size / kPageSize + 63) / 64, 0);
  }
  if (!activation.queue(kInflateQueue) || !activation.queue(kDeflateQueue)) {
    return makeError(Errc::Guest, "virtio-balloon activated without its inflate/deflate queues");
  }
  act_ = std::move(activation);
  if (target_pages_.load() != 0) {
    act_->host->configChanged();  // tell the driver about the initial target
  }
  return {};
}

void VirtioBalloon::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (!act_) return;
  if (queue == kInflateQueue || queue == kDeflateQueue) {
    processPfnsLocked(queue, queue == kInflateQueue);
  } else if (queue == kStatsQueue) {
    processStatsLocked();
  }
}

void VirtioBalloon::processPfnsLocked(uint16_t queue, bool inflate) {
  const GuestMemory& mem = *act_->memory;
  serveQueue(*act_, queue, [&](const ChainBuffers& bufs) -> ChainOutcome {
    // 5.5.6: the buffer is an array of 32-bit page frame numbers (4 KiB pages), read in
    // bounded chunks so that one huge buffer costs time, not host memory.
    std::vector<uint32_t> pfns;
    // Inflated pages are given back in runs of neighbouring frames (the driver's pages often
    // are, in either order): one madvise per run instead of one per 4 KiB page.
    uint64_t run_first = 0, run_count = 0;
    auto flush = [&] {
      if (run_count == 0) return;
      if (mem.discard(GuestAddress(run_first * kPageSize), run_count * kPageSize)) {
        stats_.inflated_pages += run_count;
      } else {
        // The run crosses a region boundary (or madvise failed): page by page.
        for (uint64_t p = run_first; p < run_first + run_count; ++p) {
          if (mem.discard(GuestAddress(p * kPageSize), kPageSize)) {
            ++stats_.inflated_pages;
          } else {
            testAndSet(p, false);
          }
        }
      }
      run_count = 0;
    };
    for (const auto& s : bufs.readable) {
      for (uint32_t off = 0; off + 4 <= s.len;) {
        uint32_t n = std::min<uint32_t>((s.len - off) / 4, kMaxPfnsPerBuffer);
        pfns.resize(n);
        EMBER_TRY(mem.read(GuestAddress(s.addr + off),
                           std::span(reinterpret_cast<uint8_t*>(pfns.data()), n * 4ULL)));
        off += n * 4;
        for (uint32_t pfn : pfns) {
          std::optional<bool> was_inflated = testAndSet(pfn, inflate);
          if (!was_inflated) {
            ++stats_.invalid_pfns;
            continue;
          }
          if (inflate) {
            if (*was_inflated) {
              ++stats_.repeated_pfns;
              continue;
            }
            if (run_count != 0 && pfn == run_first + run_count) {
              ++run_count;
            } else if (run_count != 0 && pfn + 1ULL == run_first) {
              run_first = pfn;
              ++run_count;
            } else {
              flush();
              run_first = pfn;
              run_count = 1;
            }
          } else if (*was_inflated) {
            --stats_.inflated_pages;
          }
        }
      }
    }
    flush();  // before the buffer goes back: the pages are the host's once the driver sees it
    ++buffers_;
    buffer_bytes_ += bufs.readableBytes();
    return completeChain(0);
  });
}

DeviceCounters VirtioBalloon::counters() const {
  std::lock_guard lock(mutex_);
  return DeviceCounters{buffers_, buffer_bytes_, stats_.invalid_pfns, stats_.repeated_pfns};
}

void VirtioBalloon::requestStats() {
  std::lock_guard lock(mutex_);
  if (!act_ || !stats_head_ || !act_->queue(kStatsQueue)) {
    return;
  }
  SplitQueue& q = *act_->queue(kStatsQueue);
  if (auto r = q.pushUsed(*stats_head_, 0); !r) {
    act_->host->needsReset(r.error().message);
  }
  stats_head_.reset();
  act_->host->queueUsed(kStatsQueue, q);
}

void VirtioBalloon::processStatsLocked() {
  // 5.5.6.3: the driver posts one buffer of (u16 tag, u64 value) entries; the device reads it
  // and keeps it: returning the buffer is how the device asks for fresh numbers, so it goes back
  // only on requestStats() (returning it at once would have guest and host loop forever).
  const GuestMemory& mem = *act_->memory;
  SplitQueue* q = act_->queue(kStatsQueue);
  serveQueue(*act_, kStatsQueue, [&](const ChainBuffers& bufs) -> ChainOutcome {
    for (const auto& s : bufs.readable) {
      for (uint32_t off = 0; off + 10 <= s.len && off < 64 * 10; off += 10) {
        uint8_t entry[10];
        EMBER_TRY(mem.read(GuestAddress(s.addr + off), entry));
        // struct virtio_balloon_stat: le16 tag, le64 val.
        stats_.guest_stats[loadLe<uint16_t>(std::span(entry).subspan(0, 2))] =
            loadLe<uint64_t>(std::span(entry).subspan(2, 8));
      }
    }
    if (stats_head_) {
      // A second buffer while one is held: the driver broke the protocol; give the old one back.
      EMBER_TRY(q->pushUsed(*stats_head_, 0));
    }
    stats_head_ = bufs.head;
    ++buffers_;
    buffer_bytes_ += bufs.readableBytes();
    return keepChain();
  });
}

QueueSet VirtioBalloon::reset() {
  std::lock_guard lock(mutex_);
  QueueSet queues = releaseQueues(act_);
  stats_head_.reset();
  // After a driver reset every page is the guest's again (a new driver starts with an empty
  // balloon); the host simply stops counting them as given back.
  bitmaps_.clear();
  stats_.inflated_pages = 0;
  actual_ = 0;
  return queues;
}

Result<QueuePositions> VirtioBalloon::saveState(StateWriter& w) {
  std::lock_guard lock(mutex_);
  QueuePositions positions = queuePositions(act_);
  if (act_ && stats_head_ && positions.size() > kStatsQueue && positions[kStatsQueue]) {
    --positions[kStatsQueue]->next_avail;
  }
  w.u32(target_pages_.load());
  w.u32(actual_.load());
  w.u32(static_cast<uint32_t>(bitmaps_.size()));
  for (const auto& bits : bitmaps_) {
    w.blob(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bits.data()),
                                    bits.size() * sizeof(uint64_t)));  // u64 words, host order
  }
  w.u64(stats_.inflated_pages);
  w.u64(stats_.invalid_pfns);
  w.u64(stats_.repeated_pfns);
  w.u32(static_cast<uint32_t>(stats_.guest_stats.size()));
  for (auto [tag, value] : stats_.guest_stats) {
    w.u16(tag);
    w.u64(value);
  }
  return positions;
}

void VirtioBalloon::loadState(StateReader& r) {
  std::lock_guard lock(mutex_);
  uint32_t target = r.u32("target pages");
  uint32_t actual = r.u32("actual pages");
  // The bitmaps follow RAM, which the restored machine has as the saved one had; a device that
  // was never activated has none.
  uint32_t n = r.count("bitmaps", 64);
  if (r.ok() && n != (act_ ? bitmaps_.size() : 0)) {
    r.fail("bitmaps", fmt::format("{} for {} RAM regions", n, act_ ? bitmaps_.size() : 0));
  }
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    size_t bytes = bitmaps_[i].size() * sizeof(uint64_t);
    auto b = r.blob("bitmap", bytes);
    if (r.ok() && b.size() != bytes) {
      r.fail("bitmap", fmt::format("is {} bytes, not the {} of its region", b.size(), bytes));
    }
    if (r.ok()) std::memcpy(bitmaps_[i].data(), b.data(), bytes);
  }
  BalloonStats stats;
  stats.inflated_pages = r.u64("inflated pages");
  stats.invalid_pfns = r.u64("invalid PFNs");
  stats.repeated_pfns = r.u64("repeated PFNs");
  uint32_t tags = r.count("guest statistics", 64);  // 5.5.6.3 defines 10 tags
  for (uint32_t i = 0; i < tags && r.ok(); ++i) {
    uint16_t tag = r.u16("statistics tag");
    stats.guest_stats[tag] = r.u64("statistics value");
  }
  if (!r.ok()) return;
  target_pages_ = target;
  actual_ = actual;
  stats_ = std::move(stats);
}

}  // namespace ember::devices
