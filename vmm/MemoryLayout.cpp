// RAM placement around the 32-bit MMIO hole.
#include "vmm/MemoryLayout.h"

namespace ember::vmm {

using namespace layout;

Result<MemoryLayout> MemoryLayout::forSize(uint64_t memory_bytes) {
  if (memory_bytes < kMinMemory) {
    return makeError(Errc::InvalidArgument, "memory size {} MiB is below the minimum of {} MiB",
                     memory_bytes / MiB, kMinMemory / MiB);
  }
  if (memory_bytes > kMaxMemory) {
    return makeError(Errc::InvalidArgument, "memory size {} GiB is above the maximum of {} GiB",
                     memory_bytes / GiB, kMaxMemory / GiB);
  }
  if (memory_bytes % (2 * MiB) != 0) {
    return makeError(Errc::InvalidArgument, "memory size must be a multiple of 2 MiB");
  }
  MemoryLayout l;
  l.memory_ = memory_bytes;
  uint64_t low = std::min(memory_bytes, kMmioHoleStart);
  l.ram_.push_back({GuestAddress(0), low});
  if (memory_bytes > low) {
    l.ram_.push_back({GuestAddress(kFourGiB), memory_bytes - low});
  }
  return l;
}

std::vector<E820Entry> MemoryLayout::memoryMap() const {
  std::vector<E820Entry> map;
  map.push_back({0, kEbdaStart, E820Type::Ram});
  map.push_back({kEbdaStart, kHighMemoryStart - kEbdaStart, E820Type::Reserved});
  map.push_back({kHighMemoryStart, lowRamEnd() - kHighMemoryStart, E820Type::Ram});
  map.push_back({kEcamStart, kEcamSize, E820Type::Reserved});
  if (ram_.size() > 1) {
    map.push_back({ram_[1].start.raw, ram_[1].size, E820Type::Ram});
  }
  return map;
}

uint64_t MemoryLayout::pciMmio64Start() const {
  uint64_t end = ram_.back().start.raw + ram_.back().size;
  end = std::max(end, kFourGiB);
  return (end + GiB - 1) / GiB * GiB;
}

}  // namespace ember::vmm
