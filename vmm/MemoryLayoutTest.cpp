// MemoryLayout: RAM placement around the 3-4 GiB hole, the firmware memory map, size limits.
#include <gtest/gtest.h>

#include <algorithm>

#include "vmm/MemoryLayout.h"

namespace ember::vmm {
namespace {

using namespace layout;

struct Expected {
  uint64_t size;
  uint64_t low;     // RAM at 0
  uint64_t high;    // RAM at 4 GiB (0 = none)
  uint64_t mmio64;  // pciMmio64Start()
};

void checkMemoryMap(const MemoryLayout& l) {
  auto map = l.memoryMap();
  ASSERT_FALSE(map.empty());
  uint64_t ram = 0, gap = 0;
  bool ecam_reserved = false;
  for (size_t i = 0; i < map.size(); ++i) {
    const auto& e = map[i];
    SCOPED_TRACE(::testing::Message() << "entry " << i << " at " << std::hex << e.addr);
    EXPECT_GT(e.size, 0u);
    if (i > 0) {
      EXPECT_GE(e.addr, map[i - 1].addr + map[i - 1].size) << "unsorted or overlapping";
    }
    if (e.type == E820Type::Ram) {
      ram += e.size;
      // No RAM in the 3-4 GiB hole (PCI windows, ECAM, IOAPIC, LAPIC, TSS).
      EXPECT_TRUE(e.addr + e.size <= kMmioHoleStart || e.addr >= kFourGiB);
      // Every RAM entry is backed by a RAM region.
      bool backed = std::any_of(l.ramRegions().begin(), l.ramRegions().end(), [&](auto& r) {
        return e.addr >= r.start.raw && e.addr + e.size <= r.start.raw + r.size;
      });
      EXPECT_TRUE(backed);
    }
    if (e.type == E820Type::Reserved && e.addr == kEbdaStart) {
      EXPECT_EQ(e.size, kHighMemoryStart - kEbdaStart);
      gap += e.size;
    }
    if (e.type == E820Type::Reserved && e.addr <= kEcamStart &&
        e.addr + e.size >= kEcamStart + kEcamSize) {
      ecam_reserved = true;
    }
  }
  EXPECT_EQ(gap, kHighMemoryStart - kEbdaStart);
  EXPECT_TRUE(ecam_reserved);
  EXPECT_EQ(ram + gap, l.memorySize());
  EXPECT_EQ(map.front().addr, 0u);
  EXPECT_EQ(map.front().type, E820Type::Ram);
}

TEST(MemoryLayout, PlacesRamAroundTheHole) {
  const Expected cases[] = {
      {16 * MiB, 16 * MiB, 0, 4 * GiB},
      {64 * MiB, 64 * MiB, 0, 4 * GiB},
      {256 * MiB, 256 * MiB, 0, 4 * GiB},
      {3 * GiB, 3 * GiB, 0, 4 * GiB},
      {3 * GiB + 2 * MiB, 3 * GiB, 2 * MiB, 5 * GiB},
      {5 * GiB, 3 * GiB, 2 * GiB, 6 * GiB},
      {1024 * GiB, 3 * GiB, 1021 * GiB, 1025 * GiB},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "size " << c.size / MiB << " MiB");
    auto l = MemoryLayout::forSize(c.size);
    ASSERT_TRUE(l.ok()) << l.error().message;
    EXPECT_EQ(l->memorySize(), c.size);
    const auto& regions = l->ramRegions();
    ASSERT_EQ(regions.size(), c.high == 0 ? 1u : 2u);
    EXPECT_EQ(regions[0].start.raw, 0u);
    EXPECT_EQ(regions[0].size, c.low);
    EXPECT_EQ(l->lowRamEnd(), c.low);
    if (c.high != 0) {
      EXPECT_EQ(regions[1].start.raw, kFourGiB);
      EXPECT_EQ(regions[1].size, c.high);
    }
    EXPECT_EQ(l->pciMmio64Start(), c.mmio64);
    EXPECT_EQ(l->pciMmio64Start() % GiB, 0u);
    EXPECT_GE(l->pciMmio64Start(), regions.back().start.raw + regions.back().size);
    checkMemoryMap(*l);
  }
}

TEST(MemoryLayout, MemoryMapOfSmallGuest) {
  auto l = MemoryLayout::forSize(64 * MiB);
  ASSERT_TRUE(l.ok());
  auto map = l->memoryMap();
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[0].addr, 0u);
  EXPECT_EQ(map[0].size, kEbdaStart);
  EXPECT_EQ(map[1].type, E820Type::Reserved);
  EXPECT_EQ(map[2].addr, kHighMemoryStart);
  EXPECT_EQ(map[2].size, 64 * MiB - kHighMemoryStart);
  EXPECT_EQ(map[2].type, E820Type::Ram);
  EXPECT_EQ(map[3].addr, kEcamStart);
  EXPECT_EQ(map[3].type, E820Type::Reserved);
}

TEST(MemoryLayout, BootStructuresLieInTheFirstRamEntry) {
  auto l = MemoryLayout::forSize(16 * MiB);
  ASSERT_TRUE(l.ok());
  for (uint64_t a : {kGdtAddress, kPvhStartInfo, kPvhModlist, kPvhMemmap, kPageTables, kBootParams,
                     kCmdline + kCmdlineMax - 1}) {
    EXPECT_LT(a, kEbdaStart) << std::hex << a;
  }
}

TEST(MemoryLayout, RefusesSizesOutOfRangeOrUnaligned) {
  for (uint64_t size :
       {uint64_t{0}, 14 * MiB, 16 * MiB - 2 * MiB, 16 * MiB - 4096, 1024 * GiB + 2 * MiB,
        2048 * GiB, UINT64_MAX, 64 * MiB + 4096, 64 * MiB + MiB, 3 * GiB + MiB}) {
    SCOPED_TRACE(::testing::Message() << "size " << size);
    auto l = MemoryLayout::forSize(size);
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().code, Errc::InvalidArgument);
    EXPECT_FALSE(l.error().message.empty());
  }
}

}  // namespace
}  // namespace ember::vmm
