// Helpers every device uses to walk its queues: collecting a chain's buffers, draining the
// available ring with EVENT_IDX-safe re-arming, and serveQueue(), the pop / handle / complete /
// interrupt round that every device's queue processing is.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kvm/Result.h"
#include "virtio/DescriptorChain.h"
#include "virtio/SplitQueue.h"
#include "virtio/VirtioDevice.h"

namespace ember::virtio {

struct BufferSegment {
  uint64_t addr;
  uint32_t len;
};

// A chain's buffers, split by direction (readable ones first, as 2.7.4.2 requires).
struct ChainBuffers {
  uint16_t head = 0;
  std::vector<BufferSegment> readable;
  std::vector<BufferSegment> writable;
  uint64_t readableBytes() const;
  uint64_t writableBytes() const;
};

// Walks the whole chain, validating it.
Result<ChainBuffers> collectChain(DescriptorChain& chain);

// collectChain(); a broken chain is first handed back unused (used length 0), so that every
// popped chain reaches the used ring (hostile-guest case 15), and its error is returned.
Result<ChainBuffers> collectOrReturn(SplitQueue& q, DescriptorChain& chain);

// Pops every available chain into `handle(DescriptorChain&)`, then re-arms notifications and
// repeats while buffers arrived meanwhile. Stops (without error) when `size` chains are in
// flight: completions will call it again. An error is a ring-protocol violation.
//
// With `more`, asked before each pop: false stops at once, leaving the rest of the ring where
// it is and notifications as they are; the device serves the queue again when it can take more
// (flow control toward a slow host side).
template <typename Handle, typename More>
Result<void> drainAvailable(SplitQueue& q, Handle&& handle, More&& more) {
  for (;;) {
    for (;;) {
      if (!more()) {
        return {};
      }
      auto chain = EMBER_TRY(q.pop());
      if (!chain) {
        break;
      }
      EMBER_TRY(handle(*chain));
    }
    if (q.inFlight() >= q.size()) {
      return {};
    }
    bool arrived = EMBER_TRY(q.armNotification());
    if (!arrived) {
      return {};
    }
  }
}

template <typename Handle>
Result<void> drainAvailable(SplitQueue& q, Handle&& handle) {
  return drainAvailable(q, std::forward<Handle>(handle), [] { return true; });
}

// For devices that fill the driver's buffers with host data as it comes (console input, control
// messages): the next available chain's buffers, or nothing when the ring is empty (notifications
// are re-armed first, and a buffer that raced in is taken: with EVENT_IDX the driver only kicks
// past avail_event, 2.7.10). A broken chain is handed back empty and its error returned.
Result<std::optional<ChainBuffers>> nextChain(SplitQueue& q);
// Copies `bytes` into the chain's device-writable buffers, in order; returns how many fit.
Result<uint32_t> fillWritable(const GuestMemory& mem, const ChainBuffers& chain,
                              std::span<const uint8_t> bytes);

// What serveQueue()'s handler says of a chain: complete it with this used length, or keep it
// (the device completes or holds it itself); an error is a ring-protocol violation.
using ChainOutcome = Result<std::optional<uint32_t>>;
inline ChainOutcome completeChain(uint32_t used_len) {
  return std::optional<uint32_t>(used_len);
}
inline ChainOutcome keepChain() {
  return std::optional<uint32_t>();
}

// Serves queue `index` of a live device: every available chain's buffers are collected and
// validated and handed to `handle(ChainBuffers&)`, which returns the length the device wrote to
// complete the chain with (pushUsed), or nothing when the device completes or keeps the chain
// itself (an asynchronous request, a buffer held until the host wants it). A broken chain is
// handed back empty (hostile-guest case 15). Then the driver is interrupted once for the whole
// round if it asked to be (queueUsed decides, with EVENT_IDX), and a ring-protocol violation,
// from the ring or from `handle`, sets DEVICE_NEEDS_RESET. The caller holds the device's lock.
// Returns false after such a violation.
//
// serveQueueWhile() asks `more()` before each chain (drainAvailable's flow control).
template <typename Handle, typename More>
bool serveQueueWhile(Activation& act, uint16_t index, More&& more, Handle&& handle) {
  SplitQueue* q = act.queue(index);
  if (q == nullptr) {
    return true;
  }
  auto r = drainAvailable(
      *q,
      [&](DescriptorChain& chain) -> Result<void> {
        auto bufs = EMBER_TRY(collectOrReturn(*q, chain));
        std::optional<uint32_t> used = EMBER_TRY(handle(bufs));
        if (used) {
          EMBER_TRY(q->pushUsed(bufs.head, *used));
        }
        return {};
      },
      std::forward<More>(more));
  act.host->queueUsed(index, *q);
  if (!r) {
    act.host->needsReset(r.error().message);
    return false;
  }
  return true;
}

template <typename Handle>
bool serveQueue(Activation& act, uint16_t index, Handle&& handle) {
  return serveQueueWhile(
      act, index, [] { return true; }, std::forward<Handle>(handle));
}

}  // namespace ember::virtio
