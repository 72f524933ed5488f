// Polling a split virtqueue's available ring, with notification suppression.
#include "virtio/AvailRingWatch.h"

#include <atomic>

#include "virtio/VirtioSpec.h"

namespace ember::virtio {

Result<AvailRingWatch> AvailRingWatch::start(const GuestMemory& mem, const QueueGeometry& g,
                                             bool event_idx) {
  AvailRingWatch w(mem, g, event_idx);
  w.seen_ = EMBER_TRY(w.availIndex());
  return w;
}

Result<uint16_t> AvailRingWatch::availIndex() const {
  return mem_->loadU16Acquire(GuestAddress(geo_.avail + ring::kIdx));
}

Result<bool> AvailRingWatch::moved() {
  uint16_t idx = EMBER_TRY(availIndex());
  if (idx == seen_) {
    return false;
  }
  seen_ = idx;
  return true;
}

Result<void> AvailRingWatch::askForKicks(bool want) {
  if (event_idx_) {
    // Kick at the first buffer past `seen_` (the driver kicks when avail_event lies in
    // [old, new) of its index update); one behind it is never in that range until the index
    // wraps 2^16 buffers later, which costs one spurious kick at most.
    uint64_t avail_event = geo_.used + ring::kEntries + ring::kUsedElemSize * geo_.size;
    uint16_t value = want ? seen_ : static_cast<uint16_t>(seen_ - 1);
    return mem_->storeU16Release(GuestAddress(avail_event), value);
  }
  return mem_->storeU16Release(GuestAddress(geo_.used + ring::kFlags), want ? 0 : kUsedNoNotify);
}

Result<void> AvailRingWatch::suppress() {
  EMBER_TRY(askForKicks(false));
  suppressed_ = true;
  return {};
}

Result<bool> AvailRingWatch::resume() {
  if (!suppressed_) {
    return moved();
  }
  suppressed_ = false;
  if (!event_idx_) {
    EMBER_TRY(askForKicks(true));
    // 2.7.10: the request must be visible before the index is read again, or a driver that
    // read the old flags after our last look and skipped its kick would go unnoticed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return moved();
  }
  // With EVENT_IDX the request names an index: the driver's current one, so that its next
  // buffer kicks. Until the index holds still across the request, a buffer came in between
  // that the driver may not have kicked for; ask again past it. A driver that never holds
  // still (hostile, or just fast) gets a bounded number of tries: reporting the buffers as
  // arrived hands them to the device, whose own ring processing re-arms (armNotification).
  uint16_t before = seen_;
  for (int tries = 0; tries < 8; ++tries) {
    seen_ = EMBER_TRY(availIndex());
    EMBER_TRY(askForKicks(true));
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (EMBER_TRY(availIndex()) == seen_) {
      return seen_ != before;
    }
  }
  return true;
}

}  // namespace ember::virtio
