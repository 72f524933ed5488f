// Split virtqueue ring protocol.
#include "virtio/SplitQueue.h"

#include <atomic>

#include "virtio/VirtioSpec.h"

namespace ember::virtio {

namespace {
// 2.7.10.1: "vring_need_event": interrupt if the driver's event index lies in (old, new].
bool needEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}
}  // namespace

Result<SplitQueue> SplitQueue::activate(const GuestMemory& mem, const QueueGeometry& g,
                                        uint16_t max_size, bool event_idx, bool indirect) {
  if (g.size == 0 || (g.size & (g.size - 1)) != 0 || g.size > max_size) {
    return makeError(Errc::Guest, "queue size {} is not a power of two in 1..{}", g.size, max_size);
  }
  if (g.desc % 16 != 0 || g.avail % 2 != 0 || g.used % 4 != 0) {
    return makeError(Errc::Guest,
                     "queue rings are misaligned (desc {:#x}, avail {:#x}, used "
                     "{:#x})",
                     g.desc, g.avail, g.used);
  }
  uint64_t desc_bytes = 16ULL * g.size;
  uint64_t avail_bytes = 6 + 2ULL * g.size;  // flags, idx, ring[size], used_event
  uint64_t used_bytes = 6 + ring::kUsedElemSize * g.size;
  if (!mem.contains(GuestAddress(g.desc), desc_bytes) ||
      !mem.contains(GuestAddress(g.avail), avail_bytes) ||
      !mem.contains(GuestAddress(g.used), used_bytes)) {
    return makeError(Errc::Guest,
                     "queue rings (desc {:#x}, avail {:#x}, used {:#x}, size {}) "
                     "are not inside RAM",
                     g.desc, g.avail, g.used, g.size);
  }
  // Indices start at zero on activation (2.7.13: the driver initialises the rings).
  return SplitQueue(mem, g, event_idx, indirect);
}

bool SplitQueue::hasAvailable() const {
  auto idx = mem_->loadU16Acquire(GuestAddress(geo_.avail + ring::kIdx));
  return idx && *idx != next_avail_;
}

Result<std::optional<DescriptorChain>> SplitQueue::pop() {
  uint16_t avail_idx = EMBER_TRY(mem_->loadU16Acquire(GuestAddress(geo_.avail + ring::kIdx)));
  uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending > geo_.size) {
    return makeError(Errc::Guest, "available index {} is {} entries ahead of {} in a queue of {}",
                     avail_idx, pending, next_avail_, geo_.size);
  }
  if (pending == 0 || in_flight_ >= geo_.size) {
    return std::optional<DescriptorChain>();
  }
  uint64_t slot = geo_.avail + ring::kEntries + 2ULL * (next_avail_ % geo_.size);
  uint16_t head = EMBER_TRY(mem_->readObj<uint16_t>(GuestAddress(slot)));
  if (head >= geo_.size) {
    return makeError(Errc::Guest, "available ring entry names head {} in a queue of {}", head,
                     geo_.size);
  }
  ++next_avail_;
  ++in_flight_;
  return std::optional<DescriptorChain>(
      DescriptorChain(*mem_, GuestAddress(geo_.desc), geo_.size, head, indirect_));
}

Result<void> SplitQueue::pushUsed(uint16_t head, uint32_t len) {
  EMBER_TRY(addUsed(head, len));
  return publishUsed();
}

Result<void> SplitQueue::addUsed(uint16_t head, uint32_t len) {
  uint64_t elem = geo_.used + ring::kEntries + ring::kUsedElemSize * (next_used_ % geo_.size);
  struct {
    uint32_t id;
    uint32_t len;
  } e{head, len};
  EMBER_TRY(mem_->writeObj(GuestAddress(elem), e));
  ++next_used_;
  if (in_flight_ > 0) {
    --in_flight_;
  }
  return {};
}

Result<void> SplitQueue::publishUsed() {
  // Release: the elements are visible before the index that publishes them (2.7.8.2).
  return mem_->storeU16Release(GuestAddress(geo_.used + ring::kIdx), next_used_);
}

Result<bool> SplitQueue::shouldInterrupt() {
  // The used index must be visible before we read the driver's suppression state (2.7.10).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t old_idx = signalled_used_;
  uint16_t new_idx = next_used_;
  signalled_used_ = new_idx;
  if (old_idx == new_idx) {
    return false;
  }
  if (event_idx_) {
    uint64_t used_event_addr = geo_.avail + ring::kEntries + 2ULL * geo_.size;
    uint16_t used_event = EMBER_TRY(mem_->loadU16Acquire(GuestAddress(used_event_addr)));
    return needEvent(used_event, new_idx, old_idx);
  }
  uint16_t flags = EMBER_TRY(mem_->loadU16Acquire(GuestAddress(geo_.avail + ring::kFlags)));
  return !(flags & kAvailNoInterrupt);
}

Result<bool> SplitQueue::armNotification() {
  if (event_idx_) {
    uint64_t avail_event_addr = geo_.used + ring::kEntries + ring::kUsedElemSize * geo_.size;
    EMBER_TRY(mem_->storeU16Release(GuestAddress(avail_event_addr), next_avail_));
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  uint16_t avail_idx = EMBER_TRY(mem_->loadU16Acquire(GuestAddress(geo_.avail + ring::kIdx)));
  return avail_idx != next_avail_;
}

}  // namespace ember::virtio
