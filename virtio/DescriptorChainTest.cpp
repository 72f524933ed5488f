// DescriptorChain: direct, multi-descriptor and indirect chains, and the hostile-guest chain
// cases (loops, bad indices, bad indirect tables, buffers outside RAM, direction order).
#include <gtest/gtest.h>

#include "virtio/DescriptorChain.h"
#include "virtio/VirtioSpec.h"
#include "virtio/testing/MockDriver.h"

namespace ember::virtio {
namespace {

using namespace testing;

constexpr uint64_t kTable = 0x1000;
constexpr uint16_t kSize = 8;
constexpr uint64_t kIndirect = 0x8000;
constexpr uint16_t N = desc::kNext, W = desc::kWrite, I = desc::kIndirect;

struct Walk {
  std::vector<Descriptor> descs;
  bool error = false;
  std::string message;
};

// Walks a chain with a hard bound, so that a broken iterator fails the test instead of hanging.
Walk walk(DescriptorChain chain, size_t bound = 4 * kSize + 4) {
  Walk w;
  for (size_t i = 0; i < bound; ++i) {
    auto d = chain.next();
    if (!d) {
      w.error = true;
      w.message = d.error().message;
      // After an error the chain stays finished.
      auto again = chain.next();
      EXPECT_TRUE(again.ok() && !*again);
      return w;
    }
    if (!*d) return w;
    w.descs.push_back(**d);
  }
  ADD_FAILURE() << "chain did not end within " << bound << " steps";
  return w;
}

struct ChainRig {
  GuestMemory mem = makeTestMemory();
  void set(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    MockDriver::writeDescAt(mem, kTable, i, addr, len, flags, next);
  }
  void setIndirect(uint32_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    MockDriver::writeDescAt(mem, kIndirect, i, addr, len, flags, next);
  }
  DescriptorChain chain(uint16_t head, bool indirect = true) {
    return DescriptorChain(mem, GuestAddress(kTable), kSize, head, indirect);
  }
};

TEST(DescriptorChain, DirectMultiDescriptorChain) {
  ChainRig r;
  r.set(2, 0x10000, 16, N, 5);
  r.set(5, 0x20000, 512, N | W, 1);
  r.set(1, 0x30000, 1, W);
  Walk w = walk(r.chain(2));
  ASSERT_FALSE(w.error) << w.message;
  ASSERT_EQ(w.descs.size(), 3u);
  EXPECT_EQ(w.descs[0].addr, 0x10000u);
  EXPECT_EQ(w.descs[0].len, 16u);
  EXPECT_FALSE(w.descs[0].writable);
  EXPECT_EQ(w.descs[1].addr, 0x20000u);
  EXPECT_TRUE(w.descs[1].writable);
  EXPECT_EQ(w.descs[2].len, 1u);
  EXPECT_EQ(r.chain(2).head(), 2);
}

TEST(DescriptorChain, IndirectChainFromEntryZero) {
  ChainRig r;
  r.set(0, kIndirect, 48, I | W /* the write flag on an indirect descriptor is ignored */);
  r.setIndirect(0, 0x10000, 16, N, 1);
  r.setIndirect(1, 0x11000, 100, N, 2);
  r.setIndirect(2, 0x12000, 1, W);
  Walk w = walk(r.chain(0));
  ASSERT_FALSE(w.error) << w.message;
  ASSERT_EQ(w.descs.size(), 3u);
  EXPECT_EQ(w.descs[1].addr, 0x11000u);
  EXPECT_EQ(w.descs[1].len, 100u);
  EXPECT_TRUE(w.descs[2].writable);
}

TEST(DescriptorChain, UnknownFlagsRejected) {
  ChainRig r;
  r.set(0, 0x10000, 16, 0x8);
  EXPECT_TRUE(walk(r.chain(0)).error);
}

TEST(Hostile, Case01_LoopedChain) {
  ChainRig r;
  r.set(0, 0x10000, 16, N, 1);
  r.set(1, 0x11000, 16, N, 0);  // back to the head
  Walk w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_LE(w.descs.size(), kSize);
  EXPECT_NE(w.message.find("loop"), std::string::npos) << w.message;
}

TEST(Hostile, Case01_SelfLoopAndLoopInsideIndirectTable) {
  ChainRig r;
  r.set(3, 0x10000, 16, N, 3);
  Walk w = walk(r.chain(3));
  EXPECT_TRUE(w.error);
  EXPECT_LE(w.descs.size(), kSize);

  r.set(0, kIndirect, 4 * 16, I);
  for (uint16_t i = 0; i < 4; ++i) r.setIndirect(i, 0x10000, 16, N, (i + 1) % 4);
  w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_LE(w.descs.size(), 4u);
}

TEST(Hostile, Case02_NextIndexOutOfRange) {
  for (uint16_t bad : {kSize, uint16_t{kSize + 1}, uint16_t{0xffff}}) {
    ChainRig r;
    r.set(0, 0x10000, 16, N, bad);
    Walk w = walk(r.chain(0));
    EXPECT_TRUE(w.error) << bad;
    EXPECT_EQ(w.descs.size(), 1u);
  }
  // Inside an indirect table, the bound is the table's length.
  ChainRig r;
  r.set(0, kIndirect, 32, I);
  r.setIndirect(0, 0x10000, 16, N, 2);
  Walk w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_EQ(w.descs.size(), 1u);
}

TEST(Hostile, Case03_HeadOutOfRangeRejectedByChainToo) {
  ChainRig r;
  Walk w = walk(DescriptorChain(r.mem, GuestAddress(kTable), kSize, kSize, true));
  EXPECT_TRUE(w.error);
  EXPECT_TRUE(w.descs.empty());
}

TEST(Hostile, Case06_IndirectTableBadLengthOrOutsideRam) {
  struct Bad {
    uint64_t addr;
    uint32_t len;
    const char* what;
  } cases[] = {
      {kIndirect, 0, "length 0"},
      {kIndirect, 24, "not a multiple of 16"},
      {kIndirect, 15, "shorter than one entry"},
      {kHoleStart, 32, "in the hole"},
      {kHoleStart - 16, 32, "running into the hole"},
      {kRegion2End - 16, 32, "running past the end of RAM"},
      {~0ULL - 15, 32, "wrapping past 2^64"},
      {kHighRegionEnd - 16, 32, "running past 4 GiB"},
  };
  for (const auto& c : cases) {
    ChainRig r;
    r.set(0, c.addr, c.len, I);
    Walk w = walk(r.chain(0));
    EXPECT_TRUE(w.error) << c.what;
    EXPECT_TRUE(w.descs.empty()) << c.what;
  }
}

TEST(Hostile, Case07_NestedIndirect) {
  ChainRig r;
  r.set(0, kIndirect, 32, I);
  r.setIndirect(0, 0x10000, 16, N, 1);
  r.setIndirect(1, kIndirect + 0x100, 16, I);
  Walk w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_NE(w.message.find("inside an indirect"), std::string::npos) << w.message;
}

TEST(Hostile, Case07_IndirectTogetherWithNext) {
  ChainRig r;
  r.set(0, kIndirect, 16, I | N, 1);
  r.setIndirect(0, 0x10000, 16, 0);
  r.set(1, 0x11000, 16, 0);
  Walk w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_TRUE(w.descs.empty());
}

TEST(Hostile, Case07_IndirectNotNegotiated) {
  ChainRig r;
  r.set(0, kIndirect, 16, I);
  r.setIndirect(0, 0x10000, 16, 0);
  Walk w = walk(r.chain(0, /*indirect=*/false));
  EXPECT_TRUE(w.error);
  EXPECT_TRUE(w.descs.empty());
}

TEST(Hostile, Case07_ChainLongerThanQueueSize) {
  ChainRig r;
  // An indirect table of 2 * queue-size entries, all chained.
  r.set(0, kIndirect, 16 * 2 * kSize, I);
  for (uint16_t i = 0; i < 2 * kSize; ++i) {
    r.setIndirect(i, 0x10000 + 0x100 * i, 16, i + 1 < 2 * kSize ? N : 0, i + 1);
  }
  Walk w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_EQ(w.descs.size(), kSize);
  EXPECT_NE(w.message.find("longer than the queue size"), std::string::npos) << w.message;
  // Exactly queue-size entries is fine.
  r.set(0, kIndirect, 16 * kSize, I);
  r.setIndirect(kSize - 1, 0x10000, 16, 0);
  w = walk(r.chain(0));
  EXPECT_FALSE(w.error) << w.message;
  EXPECT_EQ(w.descs.size(), kSize);
  // A direct chain through every descriptor is fine too.
  for (uint16_t i = 0; i < kSize; ++i) r.set(i, 0x10000, 16, i + 1 < kSize ? N : 0, i + 1);
  w = walk(r.chain(0));
  EXPECT_FALSE(w.error) << w.message;
  EXPECT_EQ(w.descs.size(), kSize);
}

TEST(DescriptorChain, ZeroLengthDescriptorsAreLeftToTheDevice) {
  // Whether a zero-length buffer is acceptable depends on the device (hostile-guest case 8 is
  // enforced by the device's request parser); the chain itself reports it faithfully.
  ChainRig r;
  r.set(0, 0x10000, 0, N, 1);
  r.set(1, 0x10000, 0, W);
  Walk w = walk(r.chain(0));
  ASSERT_FALSE(w.error) << w.message;
  ASSERT_EQ(w.descs.size(), 2u);
  EXPECT_EQ(w.descs[0].len, 0u);
}

TEST(Hostile, Case09_BufferOutsideRamOrOverflowing) {
  struct Bad {
    uint64_t addr;
    uint32_t len;
    const char* what;
  } cases[] = {
      {kHoleStart + 0x100, 16, "in the hole"},
      {kHoleStart - 8, 16, "running into the hole"},
      {kRegion2End - 8, 16, "running past RAM"},
      {~0ULL - 7, 16, "overflowing 64 bits"},
      {~0ULL, 1, "at 2^64 - 1"},
      {0, 0xffffffff, "huge length (CVE-2016-7422)"},
      {kHighRegionEnd - 4096, 8192, "running past 4 GiB (a 32-bit sum would wrap into RAM)"},
      {kHighRegionEnd, 16, "at 4 GiB"},
      {kHighRegionStart - 8, 16, "running into the region below 4 GiB from the hole"},
  };
  for (const auto& c : cases) {
    ChainRig r;
    r.set(0, c.addr, c.len, W);
    Walk w = walk(r.chain(0));
    EXPECT_TRUE(w.error) << c.what;
    EXPECT_TRUE(w.descs.empty()) << c.what;
  }
  // Ending exactly at 4 GiB is inside RAM.
  ChainRig r;
  r.set(0, kHighRegionEnd - 4096, 4096, W);
  Walk w = walk(r.chain(0));
  EXPECT_FALSE(w.error) << w.message;
  EXPECT_EQ(w.descs.size(), 1u);
}

TEST(Hostile, Case10_BufferStraddlingAdjacentRegionsIsAccepted) {
  ChainRig r;
  r.set(0, kRegionBoundary - 100, 200, W);
  Walk w = walk(r.chain(0));
  ASSERT_FALSE(w.error) << w.message;
  ASSERT_EQ(w.descs.size(), 1u);
  // The device must split it: it is not one host range.
  EXPECT_FALSE(r.mem.slice(GuestAddress(w.descs[0].addr), w.descs[0].len).ok());
  std::vector<iovec> iov;
  ASSERT_TRUE(r.mem.toIovecs(GuestAddress(w.descs[0].addr), w.descs[0].len, iov).ok());
  ASSERT_EQ(iov.size(), 2u);
  EXPECT_EQ(iov[0].iov_len, 100u);
  EXPECT_EQ(iov[1].iov_len, 100u);
}

TEST(Hostile, Case11_ReadableAfterWritable) {
  ChainRig r;
  r.set(0, 0x10000, 16, N, 1);
  r.set(1, 0x11000, 16, N | W, 2);
  r.set(2, 0x12000, 16, 0);
  Walk w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_EQ(w.descs.size(), 2u);
  // Also inside an indirect table.
  r.set(0, kIndirect, 32, I);
  r.setIndirect(0, 0x11000, 16, N | W, 1);
  r.setIndirect(1, 0x12000, 16, 0);
  w = walk(r.chain(0));
  EXPECT_TRUE(w.error);
  EXPECT_EQ(w.descs.size(), 1u);
}

}  // namespace
}  // namespace ember::virtio
