// Helpers every device uses to walk its queues: collecting a chain's buffers and draining the
// available ring with EVENT_IDX-safe re-arming.
#pragma once

#include <cstdint>
#include <vector>

#include "kvm/Result.h"
#include "virtio/DescriptorChain.h"
#include "virtio/SplitQueue.h"

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
template <typename Handle>
Result<void> drainAvailable(SplitQueue& q, Handle&& handle) {
  for (;;) {
    for (;;) {
      auto chain = EMBER_TRY(q.pop());
      if (!chain) {
        break;
      }
      EMBER_TRY(handle(*chain));
    }
    if (q.inFlight() >= q.size()) {
      return {};
    }
    bool more = EMBER_TRY(q.armNotification());
    if (!more) {
      return {};
    }
  }
}

}  // namespace ember::virtio
