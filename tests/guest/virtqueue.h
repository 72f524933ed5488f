// A split virtqueue, driver side (virtio 1.2 section 2.7): the descriptor table, the available
// ring the driver publishes chains in and the used ring the device returns them in, with
// chains of direct descriptors or a single descriptor pointing at an indirect table (2.7.5.3),
// the device's notification suppression honoured (2.7.10, without VIRTIO_F_EVENT_IDX) and every
// used element validated before it is trusted (2.7.8). The legacy layout (2.7.2: one 4096-aligned
// block, used ring on the next 4096 boundary) is used for the legacy face; the modern face gets
// three separate areas, deliberately not in that order in memory.
#pragma once

#include "guest.h"

namespace guest {

struct VqSeg {
  uint64_t addr;
  uint32_t len;
  bool device_writable;
};

class Virtqueue {
 public:
  static constexpr uint16_t kMaxSize = 1024;
  static constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
  static constexpr uint16_t kUsedNoNotify = 1;

  // (Re)initialises the queue with `size` entries (a power of two), all rings zeroed. Memory is
  // allocated on first use and reused while it is large enough. `indirect_max` (0: none) is the
  // longest chain add() may place in an indirect table.
  bool init(uint16_t size, bool legacy_layout, uint16_t indirect_max, char* why, size_t n);
  uint16_t size() const { return size_; }
  uint64_t desc_addr() const { return reinterpret_cast<uint64_t>(desc_); }
  uint64_t avail_addr() const { return reinterpret_cast<uint64_t>(avail_); }
  uint64_t used_addr() const { return reinterpret_cast<uint64_t>(used_); }

  // Publishes a chain of `n` segments in the available ring (no notification); the head index,
  // or -1 when it does not fit now.
  int add(const VqSeg* segs, uint16_t n, bool indirect);
  // After add(): whether the device wants a notification (full barrier, then used->flags).
  bool kick_needed() const;
  // The next used element: 1 and its head/len, 0 when there is none, -1 when the device returned
  // something invalid (described in `why`).
  int pop(uint16_t* head, uint32_t* len, char* why, size_t n);
  uint16_t in_flight() const { return in_flight_; }
  uint16_t used_index() const;  // the device's used->idx as it is now
  uint16_t avail_index() const { return avail_idx_; }

 private:
  struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
  };
  struct Avail {
    uint16_t flags, idx;
    uint16_t ring[];
  };
  struct UsedElem {
    uint32_t id, len;
  };
  struct Used {
    uint16_t flags, idx;
    UsedElem ring[];
  };

  uint16_t size_ = 0, indirect_max_ = 0;
  Desc* desc_ = nullptr;
  Avail* avail_ = nullptr;
  Used* used_ = nullptr;
  Desc* indirect_ = nullptr;
  uint8_t* mem_ = nullptr;  // the ring block(s) as allocated
  size_t mem_pages_ = 0;
  bool mem_legacy_ = false;
  uint8_t* ind_mem_ = nullptr;
  size_t ind_pages_ = 0;
  uint16_t free_head_ = 0, num_free_ = 0, avail_idx_ = 0, last_used_ = 0, in_flight_ = 0;
  uint16_t chain_len_[kMaxSize] = {};  // 0: the head is not in flight
};

}  // namespace guest
