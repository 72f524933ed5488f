// GuestMemory: bounds, overflow, region straddling, iovec splitting.
#include <gtest/gtest.h>

#include <cstring>

#include "kvm/GuestMemory.h"

namespace ember {
namespace {

constexpr uint64_t kKiB = 1 << 10, kMiB = 1 << 20;

GuestMemory twoAdjacentRegions() {
  GuestRegionSpec specs[] = {{GuestAddress(0), kMiB}, {GuestAddress(kMiB), kMiB}};
  auto mem = GuestMemory::create(specs);
  EXPECT_TRUE(mem.ok());
  return std::move(mem).value();
}

TEST(GuestMemory, RefusesOverlappingUnalignedAndEmptyRegions) {
  GuestRegionSpec overlap[] = {{GuestAddress(0), 2 * kMiB}, {GuestAddress(kMiB), kMiB}};
  EXPECT_FALSE(GuestMemory::create(overlap).ok());
  GuestRegionSpec unaligned[] = {{GuestAddress(100), kMiB}};
  EXPECT_FALSE(GuestMemory::create(unaligned).ok());
  GuestRegionSpec empty[] = {{GuestAddress(0), 0}};
  EXPECT_FALSE(GuestMemory::create(empty).ok());
  GuestRegionSpec wraps[] = {{GuestAddress(UINT64_MAX - 4095), 8192}};
  EXPECT_FALSE(GuestMemory::create(wraps).ok());
}

TEST(GuestMemory, ReadWriteRoundTripAcrossAdjacentRegions) {
  auto mem = twoAdjacentRegions();
  std::vector<uint8_t> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  GuestAddress straddle(kMiB - 32);
  ASSERT_TRUE(mem.write(straddle, data).ok());
  std::vector<uint8_t> back(64);
  ASSERT_TRUE(mem.read(straddle, back).ok());
  EXPECT_EQ(data, back);
  // A single host slice cannot cross regions (hostile-guest case 10).
  EXPECT_FALSE(mem.slice(straddle, 64).ok());
  std::vector<iovec> iov;
  ASSERT_TRUE(mem.toIovecs(straddle, 64, iov).ok());
  ASSERT_EQ(iov.size(), 2u);
  EXPECT_EQ(iov[0].iov_len, 32u);
  EXPECT_EQ(iov[1].iov_len, 32u);
}

TEST(GuestMemory, RejectsOutOfRangeAndOverflowingAccesses) {
  auto mem = twoAdjacentRegions();
  uint8_t b[16];
  EXPECT_FALSE(mem.read(GuestAddress(2 * kMiB - 8), b).ok());
  EXPECT_FALSE(mem.read(GuestAddress(2 * kMiB), b).ok());
  EXPECT_FALSE(mem.read(GuestAddress(UINT64_MAX - 4), b).ok());
  EXPECT_FALSE(mem.contains(GuestAddress(8), UINT64_MAX));
  std::vector<iovec> iov;
  EXPECT_FALSE(mem.toIovecs(GuestAddress(2 * kMiB - 8), 16, iov).ok());
  EXPECT_TRUE(iov.empty());
  EXPECT_FALSE(mem.loadU16Acquire(GuestAddress(3)).ok());  // misaligned
  EXPECT_TRUE(mem.storeU16Release(GuestAddress(4), 0xbeef).ok());
  EXPECT_EQ(*mem.loadU16Acquire(GuestAddress(4)), 0xbeef);
}

TEST(GuestMemory, DiscardZeroesPages) {
  auto mem = twoAdjacentRegions();
  ASSERT_TRUE(mem.writeObj<uint64_t>(GuestAddress(8192), 42).ok());
  ASSERT_TRUE(mem.discard(GuestAddress(8192), 4096).ok());
  EXPECT_EQ(*mem.readObj<uint64_t>(GuestAddress(8192)), 0u);
  EXPECT_FALSE(mem.discard(GuestAddress(8193), 4096).ok());
}

// SharedMemfd: the regions live in one memfd at consecutive offsets; another mapping of that fd
// (what a vhost-user backend makes of SET_MEM_TABLE) sees the guest's bytes, and a discard frees
// them in the memfd itself.
TEST(GuestMemory, SharedMemfdRegionsAreVisibleThroughTheFd) {
  GuestRegionSpec specs[] = {{GuestAddress(0), 64 * kKiB}, {GuestAddress(1 * kMiB), 32 * kKiB}};
  auto mem = GuestMemory::create(specs, MemoryBacking::SharedMemfd);
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  ASSERT_GE(mem->fd(), 0);
  ASSERT_EQ(mem->regions().size(), 2u);
  EXPECT_EQ(mem->regions()[0].fd_offset, 0u);
  EXPECT_EQ(mem->regions()[1].fd_offset, 64 * kKiB);
  ASSERT_TRUE(mem->writeObj<uint64_t>(GuestAddress(1 * kMiB + 8), 0x1122334455667788).ok());
  auto other = MemoryMapping::ofFd(mem->fd(), 96 * kKiB, PROT_READ);
  ASSERT_TRUE(other.ok()) << other.error().message;
  uint64_t seen = 0;
  std::memcpy(&seen, other->data() + 64 * kKiB + 8, sizeof seen);
  EXPECT_EQ(seen, 0x1122334455667788u);
  ASSERT_TRUE(mem->discard(GuestAddress(1 * kMiB), 4096).ok());
  std::memcpy(&seen, other->data() + 64 * kKiB + 8, sizeof seen);
  EXPECT_EQ(seen, 0u) << "a hole in the memfd: the other mapping sees it too";
  auto priv = GuestMemory::create(specs);
  ASSERT_TRUE(priv.ok());
  EXPECT_EQ(priv->fd(), -1);
}

}  // namespace
}  // namespace ember
