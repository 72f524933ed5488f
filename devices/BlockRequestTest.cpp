// parseBlockRequest: virtio-blk request classification (hostile-guest cases 8, 27-30, seg_max
// and size_max), without a disk.
#include <gtest/gtest.h>

#include <cstring>

#include "devices/BlockRequest.h"
#include "virtio/testing/MockDriver.h"

namespace ember::devices {
namespace {

using virtio::BufferSegment;
using virtio::ChainBuffers;
using namespace virtio::testing;

constexpr uint64_t kHdr = 0x1000, kData = 0x4000, kStatus = 0x2000;

struct Rig {
  GuestMemory mem = makeTestMemory();
  BlockLimits limits{2048 /* 1 MiB */, false, 126, 1 << 20};

  void header(uint32_t type, uint64_t sector, uint64_t at = kHdr) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    writeBytes(mem, at, h);
  }
  BlockOutcome parse(std::vector<BufferSegment> readable, std::vector<BufferSegment> writable) {
    ChainBuffers c;
    c.head = 3;
    c.readable = std::move(readable);
    c.writable = std::move(writable);
    return parseBlockRequest(c, mem, limits);
  }
  // A standard request: header, then data in the right direction, then a 1-byte status.
  BlockOutcome request(uint32_t type, uint64_t sector, std::vector<BufferSegment> data) {
    header(type, sector);
    std::vector<BufferSegment> r{{kHdr, 16}}, w;
    auto& dst = type == blk::kTypeOut ? r : w;
    dst.insert(dst.end(), data.begin(), data.end());
    w.push_back({kStatus, 1});
    return parse(r, w);
  }
};

const BlockIo* asIo(const BlockOutcome& o) {
  return std::get_if<BlockIo>(&o);
}
const BlockStatus* asStatus(const BlockOutcome& o) {
  return std::get_if<BlockStatus>(&o);
}
const BlockReject* asReject(const BlockOutcome& o) {
  return std::get_if<BlockReject>(&o);
}

TEST(BlockRequest, Read) {
  Rig r;
  auto o = r.request(blk::kTypeIn, 8, {{kData, 4096}});
  const BlockIo* io = asIo(o);
  ASSERT_TRUE(io);
  EXPECT_EQ(io->type, blk::kTypeIn);
  EXPECT_EQ(io->sector, 8u);
  EXPECT_EQ(io->data_len, 4096u);
  ASSERT_EQ(io->data.size(), 1u);
  EXPECT_EQ(io->data[0].addr, kData);
  EXPECT_EQ(io->status_addr, kStatus);
}

TEST(BlockRequest, WriteWithHeaderAndDataInOneDescriptor) {
  Rig r;
  r.header(blk::kTypeOut, 2);
  auto o = r.parse({{kHdr, 16 + 1024}}, {{kStatus, 1}});
  const BlockIo* io = asIo(o);
  ASSERT_TRUE(io);
  EXPECT_EQ(io->type, blk::kTypeOut);
  ASSERT_EQ(io->data.size(), 1u);
  EXPECT_EQ(io->data[0].addr, kHdr + 16);
  EXPECT_EQ(io->data[0].len, 1024u);
}

TEST(BlockRequest, HeaderSplitAcrossDescriptorsAndStatusSharingTheDataBuffer) {
  Rig r;
  r.header(blk::kTypeIn, 77, 0x7000);
  // Move the second half of the header elsewhere.
  auto tail = readBytes(r.mem, 0x7008, 8);
  writeBytes(r.mem, 0x9000, tail);
  auto o = r.parse({{0x7000, 8}, {0x9000, 8}}, {{kData, 1024 + 1}});
  const BlockIo* io = asIo(o);
  ASSERT_TRUE(io);
  EXPECT_EQ(io->sector, 77u);
  EXPECT_EQ(io->data_len, 1024u);
  EXPECT_EQ(io->status_addr, kData + 1024);
}

TEST(BlockRequest, FlushAndGetId) {
  Rig r;
  auto o = r.request(blk::kTypeFlush, 0, {});
  ASSERT_TRUE(asIo(o));
  EXPECT_EQ(asIo(o)->type, blk::kTypeFlush);
  o = r.request(blk::kTypeFlush, 0, {{kData, 512}});
  EXPECT_TRUE(asReject(o)) << "flush with data";
  o = r.request(blk::kTypeGetId, 0, {{kData, 20}});
  ASSERT_TRUE(asIo(o));
  EXPECT_EQ(asIo(o)->data_len, 20u);
}

TEST(Hostile, Case08_ZeroLengthDataWhereDataIsRequired) {
  Rig r;
  EXPECT_TRUE(asReject(r.request(blk::kTypeIn, 0, {{kData, 0}})));
  EXPECT_TRUE(asReject(r.request(blk::kTypeOut, 0, {{kData, 0}})));
  EXPECT_TRUE(asReject(r.request(blk::kTypeIn, 0, {})));
  EXPECT_TRUE(asReject(r.request(blk::kTypeOut, 0, {})));
  // A zero-length status descriptor.
  r.header(blk::kTypeIn, 0);
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}}, {{kData, 512}, {kStatus, 0}})));
}

TEST(Hostile, Case27_SectorRangeOverflowOrBeyondCapacity) {
  Rig r;
  struct Bad {
    uint64_t sector;
    uint32_t len;
    const char* what;
  } cases[] = {
      {~0ULL, 512, "sector + 1 overflows"},
      {~0ULL - 1, 1024, "sector + 2 overflows"},
      {1ULL << 55, 512, "sector * 512 would overflow"},
      {2048, 512, "first sector past the end"},
      {2047, 1024, "running past the end"},
      {0, 2048 * 512 + 512, "longer than the disk"},
  };
  for (const auto& c : cases) {
    for (uint32_t type : {blk::kTypeIn, blk::kTypeOut}) {
      auto o = r.request(type, c.sector, {{kData, c.len}});
      const BlockStatus* st = asStatus(o);
      ASSERT_TRUE(st) << c.what;
      EXPECT_EQ(st->status, blk::kStatusIoErr) << c.what;
      EXPECT_EQ(st->status_addr, kStatus);
      EXPECT_FALSE(st->reason.empty());
    }
  }
  EXPECT_TRUE(asIo(r.request(blk::kTypeIn, 2047, {{kData, 512}}))) << "the last sector";
  EXPECT_TRUE(asIo(r.request(blk::kTypeOut, 0, {{kData, 2048 * 512}})));
}

TEST(Hostile, Case27_LengthNotAMultipleOf512) {
  Rig r;
  for (uint32_t len : {1u, 511u, 513u, 4095u}) {
    auto o = r.request(blk::kTypeIn, 0, {{kData, len}});
    ASSERT_TRUE(asStatus(o)) << len;
    EXPECT_EQ(asStatus(o)->status, blk::kStatusIoErr);
  }
  // Multiple segments whose sum is a multiple of 512 are fine.
  EXPECT_TRUE(asIo(r.request(blk::kTypeIn, 0, {{kData, 100}, {kData + 1000, 412}})));
}

TEST(Hostile, Case28_MalformedChainsRejected) {
  Rig r;
  r.header(blk::kTypeIn, 0);
  const BlockReject* rej = nullptr;
  auto o = r.parse({{kHdr, 16}}, {});
  rej = asReject(o);
  ASSERT_TRUE(rej) << "header-only chain";
  EXPECT_NE(rej->reason.find("status"), std::string::npos);
  o = r.parse({}, {{kHdr, 16}, {kData, 512}, {kStatus, 1}});
  rej = asReject(o);
  ASSERT_TRUE(rej) << "writable header";
  EXPECT_NE(rej->reason.find("device-writable"), std::string::npos) << rej->reason;
  EXPECT_TRUE(asReject(r.parse({{kHdr, 15}}, {{kStatus, 1}}))) << "short header";
  EXPECT_TRUE(asReject(r.parse({{kHdr, 8}}, {{kHdr + 8, 8}, {kStatus, 1}})))
      << "header half writable";
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}, {kData, 512}, {kStatus, 1}}, {})))
      << "status byte in a device-readable buffer";
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}}, {{kData, 512}, {kStatus, 0}})))
      << "zero-length status";
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}, {kData, 512}}, {{kStatus, 1}})))
      << "read with device-readable data";
  r.header(blk::kTypeOut, 0);
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}}, {{kData, 512}, {kStatus, 1}})))
      << "write with device-writable data";
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}, {kData, 512}}, {{kData + 512, 512}, {kStatus, 1}})))
      << "write with data both ways";
  r.header(blk::kTypeGetId, 0);
  EXPECT_TRUE(asReject(r.parse({{kHdr, 16}, {kData, 20}}, {{kStatus, 1}})))
      << "get-id with device-readable data";
  // A header outside RAM (the parser reads it itself).
  EXPECT_TRUE(asReject(r.parse({{kHoleStart, 16}}, {{kStatus, 1}})));
}

TEST(Hostile, Case29_WriteToReadOnlyDisk) {
  Rig r;
  r.limits.read_only = true;
  auto o = r.request(blk::kTypeOut, 0, {{kData, 512}});
  ASSERT_TRUE(asStatus(o));
  EXPECT_EQ(asStatus(o)->status, blk::kStatusIoErr);
  EXPECT_NE(asStatus(o)->reason.find("read-only"), std::string::npos);
  EXPECT_TRUE(asIo(r.request(blk::kTypeIn, 0, {{kData, 512}})));
  EXPECT_TRUE(asIo(r.request(blk::kTypeFlush, 0, {})));
}

TEST(Hostile, Case30_UnknownTypeIsUnsupported) {
  Rig r;
  for (uint32_t type : {2u, 3u, 5u, 11u, 13u, 99u, 0xffffffffu}) {
    auto o = r.request(type, 0, {});
    ASSERT_TRUE(asStatus(o)) << type;
    EXPECT_EQ(asStatus(o)->status, blk::kStatusUnsupported) << type;
    EXPECT_EQ(asStatus(o)->status_addr, kStatus);
  }
}

TEST(Hostile, Case30_GetIdIntoFewerThan20Bytes) {
  Rig r;
  auto o = r.request(blk::kTypeGetId, 0, {{kData, 19}});
  ASSERT_TRUE(asStatus(o));
  EXPECT_EQ(asStatus(o)->status, blk::kStatusIoErr);
  o = r.request(blk::kTypeGetId, 0, {{kData, 10}, {kData + 100, 10}});
  EXPECT_TRUE(asIo(o)) << "20 bytes in two pieces";
  o = r.request(blk::kTypeGetId, 0, {});
  EXPECT_TRUE(asStatus(o));
}

TEST(BlockRequest, SegMaxAndSizeMax) {
  Rig r;
  r.limits.seg_max = 2;
  r.limits.size_max = 4096;
  auto o = r.request(blk::kTypeIn, 0, {{kData, 512}, {kData + 512, 512}, {kData + 1024, 512}});
  ASSERT_TRUE(asStatus(o));
  EXPECT_EQ(asStatus(o)->status, blk::kStatusIoErr);
  EXPECT_TRUE(asIo(r.request(blk::kTypeIn, 0, {{kData, 512}, {kData + 512, 512}})));
  o = r.request(blk::kTypeOut, 0, {{kData, 8192}});
  ASSERT_TRUE(asStatus(o));
  EXPECT_EQ(asStatus(o)->status, blk::kStatusIoErr);
  EXPECT_TRUE(asIo(r.request(blk::kTypeOut, 0, {{kData, 4096}})));
}

TEST(Hostile, Case27_HugeReadableTotalIsNotTruncated) {
  // Two 2 GiB descriptors (a guest with that much RAM may point both at the same memory) make
  // the readable total exceed 32 bits; the request must be refused, not silently shortened.
  Rig r;
  r.limits.capacity_sectors = 1ULL << 40;
  r.header(blk::kTypeOut, 0);
  auto o = r.parse({{kHdr, 16}, {kData, 0x80000000u}, {kData, 0x80000000u}, {kData, 512}},
                   {{kStatus, 1}});
  EXPECT_FALSE(asIo(o)) << "accepted as a " << asIo(o)->data_len << "-byte write";
  ASSERT_TRUE(asStatus(o));
  EXPECT_EQ(asStatus(o)->status, blk::kStatusIoErr);
}

}  // namespace
}  // namespace ember::devices
