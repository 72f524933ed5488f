// The guest's RAM: a set of non-overlapping regions, each an RAII mapping: anonymous private
// memory, or, when another process must map it too (a vhost-user backend), one memfd mapped
// shared, each region at its own offset in it.
//
// Every access Ember makes to guest memory goes through this class, which checks that the whole
// range lies in RAM (with overflow-checked arithmetic) before touching a byte. No other code does
// pointer arithmetic on guest physical addresses. A range that crosses from one region into an
// adjacent one is handled by read()/write()/toIovecs(); slice() hands out a host span only for a
// range inside a single region (hostile-guest case 10: never assume contiguity).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "kvm/MemoryMapping.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember {

// A guest physical address. A distinct type so that host pointers, offsets and guest addresses
// cannot be mixed up silently.
struct GuestAddress {
  uint64_t raw = 0;

  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t v) : raw(v) {}
  constexpr auto operator<=>(const GuestAddress&) const = default;

  // The address `offset` bytes further on, or nothing if that overflows 64 bits.
  constexpr std::optional<GuestAddress> checkedAdd(uint64_t offset) const {
    uint64_t r = 0;
    if (__builtin_add_overflow(raw, offset, &r)) {
      return std::nullopt;
    }
    return GuestAddress(r);
  }
};

enum class MemoryBacking {
  Private,      // anonymous, private to ember
  SharedMemfd,  // one memfd, mapped shared: handed to vhost-user backends (SET_MEM_TABLE)
};

struct GuestRegionSpec {
  GuestAddress start;
  uint64_t size;

  bool operator==(const GuestRegionSpec&) const = default;
};

class GuestMemory {
 public:
  struct Region {
    GuestAddress start;
    uint64_t size;
    MemoryMapping mapping;
    uint64_t fd_offset = 0;  // where the region starts in fd() (SharedMemfd)

    uint64_t end() const { return start.raw + size; }  // exclusive; cannot overflow (checked)
  };

  // Allocates one anonymous mapping per region. Regions must be page-aligned, non-empty and
  // non-overlapping.
  static Result<GuestMemory> create(std::span<const GuestRegionSpec> specs,
                                    MemoryBacking backing = MemoryBacking::Private);

  // A restored machine's RAM (issue 13): the regions mapped private and copy-on-write from FD,
  // one after another from OFFSET (page-aligned), so that pages load as the guest touches them
  // and the file is never written.
  static Result<GuestMemory> mapFile(std::span<const GuestRegionSpec> specs, int fd,
                                     uint64_t offset);

  GuestMemory() = default;
  GuestMemory(GuestMemory&&) = default;
  GuestMemory& operator=(GuestMemory&&) = default;

  const std::vector<Region>& regions() const { return regions_; }
  // The memfd behind every region with SharedMemfd, -1 otherwise.
  int fd() const { return memfd_.get(); }
  uint64_t totalSize() const;

  // True when [addr, addr+len) lies entirely in RAM (possibly spanning adjacent regions).
  bool contains(GuestAddress addr, uint64_t len) const;

  // A host view of [addr, addr+len) when it lies inside a single region.
  Result<std::span<uint8_t>> slice(GuestAddress addr, uint64_t len) const;

  Result<void> read(GuestAddress addr, std::span<uint8_t> out) const;
  Result<void> write(GuestAddress addr, std::span<const uint8_t> in) const;
  Result<void> fill(GuestAddress addr, uint8_t value, uint64_t len) const;

  template <typename T>
  Result<T> readObj(GuestAddress addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    EMBER_TRY(
        read(addr, std::span(reinterpret_cast<uint8_t*>(&value), sizeof value)));  // POD bytes
    return value;
  }
  template <typename T>
  Result<void> writeObj(GuestAddress addr, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(addr, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof value));  // POD
  }

  // Appends host iovecs covering [addr, addr+len), split at region boundaries.
  Result<void> toIovecs(GuestAddress addr, uint64_t len, std::vector<iovec>& out) const;

  // Single-copy-atomic accesses for shared ring fields (virtio 1.2 section 2.7.13 and 2.6.13:
  // the driver and the device access idx fields concurrently). `addr` must be naturally aligned.
  Result<uint16_t> loadU16Acquire(GuestAddress addr) const;
  Result<void> storeU16Release(GuestAddress addr, uint16_t value) const;
  Result<uint32_t> loadU32Acquire(GuestAddress addr) const;

  // Gives the host pages backing [addr, addr+len) back to the kernel (balloon inflate); the guest
  // sees zeroes afterwards (in RAM mapped from a snapshot's memory file, the file's bytes again:
  // a ballooned page has no defined content). Only whole pages inside one region are released.
  Result<void> discard(GuestAddress addr, uint64_t len) const;

 private:
  const Region* find(GuestAddress addr) const;
  std::vector<Region> regions_;
  UniqueFd memfd_;
};

}  // namespace ember
