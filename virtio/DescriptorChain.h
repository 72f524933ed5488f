// A validating iterator over one split-virtqueue descriptor chain (virtio 1.2, 2.7.5 and
// 2.7.5.3 indirect descriptors).
//
// next() yields each descriptor or an error, never indexing with an unchecked value: every index
// is below the table size, the number of descriptors followed is at most the table size (a looped
// chain ends in an error, hostile-guest case 1), only the known flags are accepted, INDIRECT is
// only followed when negotiated, not together with NEXT, not nested and only to a table whose
// length is a non-zero multiple of 16 inside RAM (cases 6-7), and a device-readable descriptor
// after a device-writable one is refused (case 11). Every buffer must lie inside guest RAM with
// overflow-checked bounds (case 9).
#pragma once

#include <cstdint>
#include <optional>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"

namespace ember::virtio {

struct Descriptor {
  uint64_t addr;
  uint32_t len;
  bool writable;
};

// The in-memory layout of a descriptor (2.7.5).
struct RawDescriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(RawDescriptor) == 16);

class DescriptorChain {
 public:
  DescriptorChain(const GuestMemory& mem, GuestAddress table, uint16_t queue_size, uint16_t head,
                  bool indirect_allowed);

  uint16_t head() const { return head_; }
  // The next descriptor, nothing at the end of the chain, or an error (the chain is unusable).
  Result<std::optional<Descriptor>> next();

 private:
  const GuestMemory* mem_;
  GuestAddress table_;   // current table (the queue's, or an indirect one)
  uint32_t table_size_;  // entries in the current table
  uint32_t queue_size_;
  uint32_t total_ = 0;  // buffers yielded in the whole chain
  uint16_t head_;
  uint32_t index_;         // next index to read in the current table
  uint32_t followed_ = 0;  // descriptors read from the current table
  bool indirect_allowed_;
  bool in_indirect_ = false;
  bool done_ = false;
  bool seen_writable_ = false;
};

}  // namespace ember::virtio
