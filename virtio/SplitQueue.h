// The device side of one split virtqueue (virtio 1.2, 2.7).
//
// Geometry is validated once, at activation, and frozen (hostile-guest cases 12-13): size a
// non-zero power of two no larger than the device's maximum, rings aligned as 2.7 requires
// (descriptor table 16, available ring 2, used ring 4) and lying wholly in RAM. Ring indices are
// read and written as single 16-bit atomic accesses with acquire/release ordering and a full
// fence before the interrupt-suppression check (case 14, 2.7.7.2 / 2.7.10). A head index is
// checked before use (case 3), the available index may not run more than a queue's worth ahead
// (case 4), and at most `size` chains are in flight at once (case 5).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "virtio/DescriptorChain.h"

namespace ember::virtio {

// Where the device stands in a queue's rings: what a snapshot saves and a restore sets back
// (issue 13). next_avail is the next available-ring entry it will read (2.7.6), next_used the
// next used-ring entry it will write (2.7.8), signalled_used the used index when it last decided
// whether to interrupt (2.7.10, with EVENT_IDX).
struct QueuePosition {
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  uint16_t signalled_used = 0;

  bool operator==(const QueuePosition&) const = default;
};

struct QueueGeometry {
  uint16_t size = 0;
  uint64_t desc = 0;   // descriptor table
  uint64_t avail = 0;  // driver area
  uint64_t used = 0;   // device area
};

class SplitQueue {
 public:
  static Result<SplitQueue> activate(const GuestMemory& mem, const QueueGeometry& geometry,
                                     uint16_t max_size, bool event_idx, bool indirect);

  uint16_t size() const { return geo_.size; }
  const QueueGeometry& geometry() const { return geo_; }
  uint32_t inFlight() const { return in_flight_; }
  // The device's ring positions (2.7.6, 2.7.8): the next available entry it will read and the next
  // used entry it will write. What a backend taking over the queue, or a snapshot, starts from.
  uint16_t nextAvail() const { return next_avail_; }
  uint16_t nextUsed() const { return next_used_; }
  QueuePosition position() const { return {next_avail_, next_used_, signalled_used_}; }
  // A restored queue (issue 13) starts where the saved one stood, with nothing in flight (the
  // snapshot was taken with every chain completed). Any value is safe: pop() checks the
  // driver's available index against next_avail as it always does (hostile-guest case 4).
  void restorePosition(const QueuePosition& p) {
    next_avail_ = p.next_avail;
    next_used_ = p.next_used;
    signalled_used_ = p.signalled_used;
    in_flight_ = 0;
  }

  // The next available chain, or nothing when the ring is empty (or `size` chains are already in
  // flight). An error means the driver broke the ring protocol.
  Result<std::optional<DescriptorChain>> pop();
  // Returns a chain to the driver with `len` bytes written into its device-writable buffers.
  Result<void> pushUsed(uint16_t head, uint32_t len);
  // The two halves of pushUsed, for a batch the driver must see at once (a mergeable receive
  // frame spread over several chains, 5.1.6.4): addUsed writes the used element without moving
  // the used index, publishUsed moves it past every element added so far (2.7.8.2).
  Result<void> addUsed(uint16_t head, uint32_t len);
  Result<void> publishUsed();
  // After pushing a batch: whether the driver asked to be interrupted for it (2.7.10).
  Result<bool> shouldInterrupt();
  // With EVENT_IDX, asks for a kick at the next new buffer (avail_event = next index) and
  // reports whether buffers arrived meanwhile; without, just reports whether any are pending.
  Result<bool> armNotification();
  bool hasAvailable() const;

 private:
  SplitQueue(const GuestMemory& mem, const QueueGeometry& g, bool event_idx, bool indirect)
      : mem_(&mem), geo_(g), event_idx_(event_idx), indirect_(indirect) {}

  const GuestMemory* mem_;
  QueueGeometry geo_;
  bool event_idx_;
  bool indirect_;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;  // used index when the interrupt decision was last made
  uint32_t in_flight_ = 0;
};

// A device's queues, one entry per queue; empty where the driver left the queue off.
using QueueSet = std::vector<std::optional<SplitQueue>>;

}  // namespace ember::virtio
