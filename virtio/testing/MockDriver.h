// Test-only guest side of a split virtqueue: a mock guest memory (several real anonymous
// regions, two of them adjacent, one gap, one ending at 4 GiB) and a mock virtio driver that lays
// out descriptor tables and rings in it, posts direct, multi-descriptor and indirect chains, and
// reads used entries back. Ring indices are accessed as single 16-bit atomics, as a real driver
// does, so threaded tests are meaningful under TSan.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "kvm/GuestMemory.h"
#include "virtio/SplitQueue.h"
#include "virtio/VirtioSpec.h"

namespace ember::virtio::testing {

constexpr uint64_t kKiB = 1ULL << 10;
constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

// The mock guest's physical memory map.
//   [0, 1 MiB)            region 0 (rings and most buffers)
//   [1 MiB, 2 MiB)        region 1: adjacent to region 0 but a separate host mapping, so a
//                         buffer across 1 MiB is host-discontiguous (hostile-guest case 10)
//   [2 MiB, 3 MiB)        a hole (no RAM)
//   [3 MiB, 4 MiB)        region 2
//   [4 GiB - 64 KiB, 4 GiB) region 3: RAM that ends exactly at 4 GiB (case 9)
constexpr uint64_t kRegionBoundary = 1 * kMiB;
constexpr uint64_t kHoleStart = 2 * kMiB, kHoleEnd = 3 * kMiB;
constexpr uint64_t kRegion2Start = 3 * kMiB, kRegion2End = 4 * kMiB;
constexpr uint64_t kHighRegionStart = 4 * kGiB - 64 * kKiB, kHighRegionEnd = 4 * kGiB;

inline GuestMemory makeTestMemory(MemoryBacking backing = MemoryBacking::Private) {
  GuestRegionSpec specs[] = {{GuestAddress(0), kMiB},
                             {GuestAddress(kMiB), kMiB},
                             {GuestAddress(kRegion2Start), kMiB},
                             {GuestAddress(kHighRegionStart), 64 * kKiB}};
  auto mem = GuestMemory::create(specs, backing);
  EXPECT_TRUE(mem.ok()) << (mem.ok() ? "" : mem.error().message);
  return std::move(mem).value();
}

inline std::vector<uint8_t> readBytes(const GuestMemory& mem, uint64_t addr, size_t len) {
  std::vector<uint8_t> out(len);
  EXPECT_TRUE(mem.read(GuestAddress(addr), out).ok());
  return out;
}

inline void writeBytes(const GuestMemory& mem, uint64_t addr, std::span<const uint8_t> data) {
  EXPECT_TRUE(mem.write(GuestAddress(addr), data).ok());
}

inline void fillBytes(const GuestMemory& mem, uint64_t addr, uint8_t value, uint64_t len) {
  EXPECT_TRUE(mem.fill(GuestAddress(addr), value, len).ok());
}

// Calls `step` until `done` holds or `timeout` passes; returns whether `done` held.
template <typename Done, typename Step>
bool pollUntil(Done&& done, Step&& step,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    step();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

class MockDriver {
 public:
  struct Buffer {
    uint64_t addr;
    uint32_t len;
    bool writable;
  };
  struct UsedElem {
    uint32_t id;
    uint32_t len;
  };

  // The legacy layout (2.7.2): descriptors at `base`, the available ring right after them, the
  // used ring on the next 4096-byte boundary. It is also a valid modern layout.
  static QueueGeometry legacyLayout(uint16_t size, uint64_t base) {
    QueueGeometry g;
    g.size = size;
    g.desc = base;
    g.avail = base + 16ULL * size;
    g.used = (g.avail + 6 + 2ULL * size + 4095) & ~4095ULL;
    return g;
  }

  // A driver for a queue of `size` at `base`; data buffers come from [arena, arena_end)
  // (by default the 192 KiB after 64 KiB past `base`).
  MockDriver(const GuestMemory& mem, uint16_t size, uint64_t base)
      : MockDriver(mem, legacyLayout(size, base)) {}
  MockDriver(const GuestMemory& mem, const QueueGeometry& g)
      : mem_(&mem), geo_(g), arena_(g.desc + 64 * kKiB), arena_end_(g.desc + 256 * kKiB) {
    // The driver initialises the rings (2.7.13) before handing them to the device.
    fillBytes(mem, g.desc, 0, 16ULL * g.size);
    fillBytes(mem, g.avail, 0, 6 + 2ULL * g.size);
    fillBytes(mem, g.used, 0, 6 + 8ULL * g.size);
  }

  const QueueGeometry& geometry() const { return geo_; }
  uint16_t size() const { return geo_.size; }
  const GuestMemory& memory() const { return *mem_; }

  void setArena(uint64_t start, uint64_t end) {
    arena_ = start;
    arena_end_ = end;
  }
  // A fresh data buffer of `len` bytes, zeroed.
  uint64_t alloc(uint64_t len, uint64_t align = 16) {
    uint64_t at = (arena_ + align - 1) & ~(align - 1);
    EXPECT_LE(at + len, arena_end_) << "mock driver arena exhausted";
    arena_ = at + len;
    fillBytes(*mem_, at, 0, len);
    return at;
  }

  // ---- descriptors ----
  static void writeDescAt(const GuestMemory& mem, uint64_t table, uint32_t index, uint64_t addr,
                          uint32_t len, uint16_t flags, uint16_t next) {
    RawDescriptor d{addr, len, flags, next};
    EXPECT_TRUE(mem.writeObj(GuestAddress(table + 16ULL * index), d).ok());
  }
  void writeDesc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    writeDescAt(*mem_, geo_.desc, index, addr, len, flags, next);
  }
  // Takes the next `n` descriptor slots, round robin. There is no free list: a test must not
  // have more descriptors outstanding than the queue size (use indirect chains to go further).
  uint16_t takeDescriptors(uint16_t n) {
    uint16_t first = next_desc_;
    next_desc_ = static_cast<uint16_t>((next_desc_ + n) % geo_.size);
    return first;
  }
  // Writes a direct chain of `bufs` into consecutive free descriptors; returns its head.
  uint16_t makeChain(const std::vector<Buffer>& bufs) {
    EXPECT_FALSE(bufs.empty());
    EXPECT_LE(bufs.size(), geo_.size);
    uint16_t head = takeDescriptors(static_cast<uint16_t>(bufs.size()));
    for (size_t i = 0; i < bufs.size(); ++i) {
      uint16_t index = static_cast<uint16_t>((head + i) % geo_.size);
      uint16_t next = static_cast<uint16_t>((head + i + 1) % geo_.size);
      bool last = i + 1 == bufs.size();
      uint16_t flags =
          static_cast<uint16_t>((bufs[i].writable ? desc::kWrite : 0) | (last ? 0 : desc::kNext));
      writeDesc(index, bufs[i].addr, bufs[i].len, flags, last ? 0 : next);
    }
    return head;
  }
  // Writes `bufs` as an indirect table at `table` and one INDIRECT descriptor; returns its head.
  uint16_t makeIndirect(const std::vector<Buffer>& bufs, uint64_t table) {
    for (size_t i = 0; i < bufs.size(); ++i) {
      bool last = i + 1 == bufs.size();
      uint16_t flags =
          static_cast<uint16_t>((bufs[i].writable ? desc::kWrite : 0) | (last ? 0 : desc::kNext));
      writeDescAt(*mem_, table, static_cast<uint32_t>(i), bufs[i].addr, bufs[i].len, flags,
                  static_cast<uint16_t>(last ? 0 : i + 1));
    }
    uint16_t head = takeDescriptors(1);
    writeDesc(head, table, static_cast<uint32_t>(16 * bufs.size()), desc::kIndirect, 0);
    return head;
  }

  // ---- available ring ----
  void setAvailEntry(uint16_t slot, uint16_t head) {
    EXPECT_TRUE(
        mem_->writeObj(GuestAddress(geo_.avail + 4 + 2ULL * (slot % geo_.size)), head).ok());
  }
  void setAvailIdx(uint16_t idx) {
    avail_idx_ = idx;
    EXPECT_TRUE(mem_->storeU16Release(GuestAddress(geo_.avail + 2), idx).ok());
  }
  uint16_t availIdx() const { return avail_idx_; }
  // Makes `head` available (ring entry, then the index with release ordering: 2.7.13.2).
  void publish(uint16_t head) {
    setAvailEntry(avail_idx_, head);
    setAvailIdx(static_cast<uint16_t>(avail_idx_ + 1));
  }
  uint16_t post(const std::vector<Buffer>& bufs) {
    uint16_t head = makeChain(bufs);
    publish(head);
    return head;
  }
  uint16_t postIndirect(const std::vector<Buffer>& bufs, uint64_t table) {
    uint16_t head = makeIndirect(bufs, table);
    publish(head);
    return head;
  }
  void setAvailFlags(uint16_t flags) {
    EXPECT_TRUE(mem_->storeU16Release(GuestAddress(geo_.avail), flags).ok());
  }
  // EVENT_IDX: used_event lives after the available ring (2.7.10).
  void setUsedEvent(uint16_t value) {
    EXPECT_TRUE(mem_->storeU16Release(GuestAddress(geo_.avail + 4 + 2ULL * geo_.size), value).ok());
  }

  // ---- used ring ----
  uint16_t usedIdx() const {
    auto v = mem_->loadU16Acquire(GuestAddress(geo_.used + 2));
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : 0;
  }
  uint16_t usedFlags() const {
    auto v = mem_->loadU16Acquire(GuestAddress(geo_.used));
    return v.ok() ? *v : 0;
  }
  // EVENT_IDX: avail_event lives after the used ring.
  uint16_t availEvent() const {
    auto v = mem_->loadU16Acquire(GuestAddress(geo_.used + 4 + 8ULL * geo_.size));
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : 0;
  }
  UsedElem usedElem(uint16_t i) const {
    auto e = mem_->readObj<UsedElem>(GuestAddress(geo_.used + 4 + 8ULL * (i % geo_.size)));
    EXPECT_TRUE(e.ok());
    return e.ok() ? *e : UsedElem{0xffffffff, 0xffffffff};
  }
  // Used entries the driver has not consumed yet.
  uint16_t pendingUsed() const { return static_cast<uint16_t>(usedIdx() - last_used_); }
  std::optional<UsedElem> popUsed() {
    if (usedIdx() == last_used_) return std::nullopt;
    return usedElem(last_used_++);
  }
  std::vector<UsedElem> drainUsed() {
    std::vector<UsedElem> out;
    while (auto e = popUsed()) out.push_back(*e);
    return out;
  }

 private:
  const GuestMemory* mem_;
  QueueGeometry geo_;
  uint64_t arena_, arena_end_;
  uint16_t next_desc_ = 0;
  uint16_t avail_idx_ = 0;
  uint16_t last_used_ = 0;
};

}  // namespace ember::virtio::testing
