// VirtioBlock end to end: a mock driver posts requests through the virtio-pci transport to a
// temporary disk image served with real libaio; covers data landing in the file, FLUSH, GET_ID,
// read-only disks, hostile-guest cases 4, 5, 8, 10, 15, 25, 27-30 and injected host I/O errors
// (case 37: ENOSPC on a tiny tmpfs, reads past the end of a shrunken image, a backend whose
// descriptors refuse writes).
// test-labels: threaded
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "devices/VirtioBlock.h"
#include "devices/VirtioRng.h"
#include "kvm/EventLoop.h"
#include "kvm/Log.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TempFile.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::devices {
namespace {

using namespace virtio::testing;
using virtio::QueueGeometry;
namespace status = virtio::status;
namespace common = virtio::common;
using Buffer = MockDriver::Buffer;

constexpr uint64_t kImageSize = 1 * kMiB;
constexpr const char* kSerial = "ember-serial-01";
constexpr uint64_t kFeatureRo = 1ULL << 5, kFeatureFlush = 1ULL << 9, kFeatureMq = 1ULL << 12;

struct Req {
  uint16_t head;
  uint64_t hdr;
  uint64_t status;
};

struct BlkRig {
  explicit BlkRig(uint64_t size = kImageSize, bool read_only = false,
                  const std::string& dir = "/tmp", uint16_t queue_size = 64, bool fill = true,
                  EventLoop* loop = nullptr)
      : file(size, dir, fill),
        loop_(loop),
        h(makeDevice(read_only)),
        drv(h.mem, queue_size, 0x10000) {
    drv.setArena(0x20000, kRegionBoundary);
  }

  std::unique_ptr<virtio::VirtioDevice> makeDevice(bool read_only) {
    if (file.ok()) {
      auto f = BlockFile::open(file.path(), read_only);
      EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
      if (f.ok()) {
        auto dev = VirtioBlock::create(std::move(*f), kSerial, loop_, engine, queues);
        EXPECT_TRUE(dev.ok()) << (dev.ok() ? "" : dev.error().message);
        if (dev.ok()) {
          blk = dev->get();
          return std::move(*dev);
        }
      }
    }
    return std::make_unique<VirtioRng>();  // keeps the harness constructible; tests check `blk`
  }

  void init(uint64_t features = virtio::feature::kVersion1) {
    h.modernInit(features, {drv.geometry()});
  }

  void header(uint64_t at, uint32_t type, uint64_t sector) {
    uint8_t b[16] = {};
    std::memcpy(b, &type, 4);
    std::memcpy(b + 8, &sector, 8);
    writeBytes(h.mem, at, b);
  }
  // Posts header + `data` + status (not kicked).
  Req post(uint32_t type, uint64_t sector, const std::vector<Buffer>& data) {
    return postOn(drv, type, sector, data);
  }
  // The same on another queue's driver.
  Req postOn(MockDriver& d, uint32_t type, uint64_t sector, const std::vector<Buffer>& data) {
    Req r{};
    r.hdr = d.alloc(16);
    r.status = d.alloc(1);
    header(r.hdr, type, sector);
    fillBytes(h.mem, r.status, 0xff, 1);
    std::vector<Buffer> bufs{{r.hdr, 16, false}};
    bufs.insert(bufs.end(), data.begin(), data.end());
    bufs.push_back({r.status, 1, true});
    r.head = d.post(bufs);
    return r;
  }
  // Processes completions until `d` shows `count` used entries (bounded).
  bool waitUsedOn(MockDriver& d, uint16_t count) {
    return pollUntil([&] { return static_cast<uint16_t>(d.usedIdx()) >= count; },
                     [&] { blk->processCompletions(); });
  }
  void kick() { h.kickModern(0); }
  // Processes AIO completions until `count` used entries are visible (bounded).
  bool waitUsed(uint16_t count) {
    return pollUntil([&] { return static_cast<uint16_t>(drv.usedIdx()) >= count; },
                     [&] { blk->processCompletions(); });
  }
  uint8_t statusOf(const Req& r) { return readBytes(h.mem, r.status, 1)[0]; }
  // One request, kicked and waited for; returns its status byte.
  uint8_t run(uint32_t type, uint64_t sector, const std::vector<Buffer>& data) {
    Req r = post(type, sector, data);
    uint16_t want = static_cast<uint16_t>(drv.availIdx());
    kick();
    EXPECT_TRUE(waitUsed(want)) << "request did not complete";
    return statusOf(r);
  }
  uint8_t status() { return h.modernStatus(); }

  // The engine every rig is built with; the *Engine fixtures set it per parameter.
  static inline BlockEngineKind engine = BlockEngineKind::LibAio;
  static inline uint16_t queues = 1;  // num-queues of every rig; the MQ tests set it
  TempFile file;
  EventLoop* loop_ = nullptr;
  VirtioBlock* blk = nullptr;
  TransportHarness h;
  MockDriver drv;
};

std::vector<uint8_t> pattern(size_t len, uint8_t seed) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = static_cast<uint8_t>(seed + i * 13 + (i >> 8));
  return v;
}

std::vector<uint8_t> imageBytes(uint64_t offset, size_t len) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = imageByte(offset + i);
  return v;
}

// The tests that move data, flush, fail and reset run once per engine (aio=libaio|io_uring|sync).
class EngineParam : public ::testing::TestWithParam<BlockEngineKind> {
 protected:
  void SetUp() override { BlkRig::engine = GetParam(); }
  void TearDown() override {
    BlkRig::engine = BlockEngineKind::LibAio;
    BlkRig::queues = 1;
  }
};
class VirtioBlockEngine : public EngineParam {};
class HostileEngine : public EngineParam {};

std::string engineName(const ::testing::TestParamInfo<BlockEngineKind>& info) {
  return blockEngineName(info.param);
}
const auto kEngines =
    ::testing::Values(BlockEngineKind::LibAio, BlockEngineKind::IoUring, BlockEngineKind::Sync);
INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlockEngine, kEngines, engineName);
INSTANTIATE_TEST_SUITE_P(Engines, HostileEngine, kEngines, engineName);

TEST(VirtioBlock, ConfigAndFeatures) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  uint64_t dev = virtio::VirtioPciTransport::kDeviceOffset;
  EXPECT_EQ(r.h.modernRead(dev + 0, 8), kImageSize / 512);
  EXPECT_EQ(r.h.modernRead(dev + 8, 4), VirtioBlock::kSizeMax);
  EXPECT_EQ(r.h.modernRead(dev + 12, 4), VirtioBlock::kSegMax);
  EXPECT_EQ(r.h.modernRead(dev + 20, 4), 512u);
  EXPECT_EQ(r.h.modernRead(dev + 1, 2), (kImageSize / 512) >> 8 & 0xffff);  // unaligned
  EXPECT_EQ(r.h.modernRead(dev + 36, 4), 0u);
  EXPECT_EQ(r.h.modernRead(dev + 0xff0, 8), 0u);
  uint64_t f = r.h.modernDeviceFeatures();
  EXPECT_TRUE(f & kFeatureFlush);
  EXPECT_FALSE(f & kFeatureRo);
  EXPECT_TRUE(f & kFeatureMq) << "offered with num_queues 1 too, as QEMU does";
  EXPECT_EQ(r.h.modernRead(dev + 34, 2), 1u) << "num_queues";
  EXPECT_EQ(r.h.cfgRead(pci::cfg::kVendorId, 4), 0x10011af4u);
}

TEST_P(VirtioBlockEngine, WritesLandInTheFileAndReadBack) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  auto data = pattern(4096, 1);
  uint64_t wbuf = r.drv.alloc(4096, 4096);
  writeBytes(r.h.mem, wbuf, data);
  Req w = r.post(blk::kTypeOut, 8, {{wbuf, 4096, false}});
  r.kick();
  ASSERT_TRUE(r.waitUsed(1));
  EXPECT_EQ(r.statusOf(w), blk::kStatusOk);
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, w.head);
  EXPECT_EQ(used->len, 1u);
  EXPECT_EQ(r.file.read(8 * 512, 4096), data);
  EXPECT_EQ(r.file.read(0, 4096), imageBytes(0, 4096)) << "neighbouring sectors untouched";
  EXPECT_EQ(r.file.read(8 * 512 + 4096, 512), imageBytes(8 * 512 + 4096, 512));

  uint64_t rbuf = r.drv.alloc(4096, 4096);
  Req rd = r.post(blk::kTypeIn, 8, {{rbuf, 4096, true}});
  r.kick();
  ASSERT_TRUE(r.waitUsed(2));
  EXPECT_EQ(r.statusOf(rd), blk::kStatusOk);
  used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 4097u);
  EXPECT_EQ(readBytes(r.h.mem, rbuf, 4096), data);
  EXPECT_EQ(r.blk->failedRequests(), 0u);
}

TEST_P(VirtioBlockEngine, MultiSegmentUnalignedAndIndirectRequests) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init(virtio::feature::kVersion1 | virtio::feature::kIndirectDesc);
  // Three segments, the middle one at an odd address (the buffered path).
  uint64_t a = r.drv.alloc(512), b = r.drv.alloc(4096 + 1) + 1, c = r.drv.alloc(3584);
  EXPECT_EQ(r.run(blk::kTypeIn, 100, {{a, 512, true}, {b, 4096, true}, {c, 3584, true}}),
            blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, a, 512), imageBytes(100 * 512, 512));
  EXPECT_EQ(readBytes(r.h.mem, b, 4096), imageBytes(100 * 512 + 512, 4096));
  EXPECT_EQ(readBytes(r.h.mem, c, 3584), imageBytes(100 * 512 + 4608, 3584));
  // Indirect: header, data and status in one indirect table.
  uint64_t hdr = r.drv.alloc(16), data = r.drv.alloc(1024), st = r.drv.alloc(1);
  uint64_t table = r.drv.alloc(48);
  r.header(hdr, blk::kTypeIn, 3);
  r.drv.postIndirect({{hdr, 16, false}, {data, 1024, true}, {st, 1, true}}, table);
  r.kick();
  ASSERT_TRUE(r.waitUsed(2));
  EXPECT_EQ(readBytes(r.h.mem, st, 1)[0], blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, data, 1024), imageBytes(3 * 512, 1024));
}

TEST_P(VirtioBlockEngine, ManyRequestsInOneKick) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  std::vector<Req> reqs;
  std::vector<uint64_t> bufs;
  for (int i = 0; i < 20; ++i) {
    uint64_t buf = r.drv.alloc(2048, 4096);
    bufs.push_back(buf);
    if (i < 10) {
      writeBytes(r.h.mem, buf, pattern(2048, static_cast<uint8_t>(i)));
      reqs.push_back(r.post(blk::kTypeOut, 200 + 4 * i, {{buf, 2048, false}}));
    } else {
      reqs.push_back(r.post(blk::kTypeIn, 400 + 4 * i, {{buf, 2048, true}}));
    }
  }
  r.kick();
  ASSERT_TRUE(r.waitUsed(20));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(r.statusOf(reqs[i]), blk::kStatusOk) << i;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(r.file.read((200 + 4 * i) * 512, 2048), pattern(2048, static_cast<uint8_t>(i)));
  }
  for (int i = 10; i < 20; ++i) {
    EXPECT_EQ(readBytes(r.h.mem, bufs[i], 2048), imageBytes((400 + 4 * i) * 512, 2048));
  }
}

// Completions collected in one round are pushed to the used ring together and signalled with
// one interrupt (VirtioBlock::reapLocked pushes every completion the engine reaped, then
// processLocked / processCompletions call queueUsed once). 16 reads in one kick: the kernel has
// finished all of them when the device looks, so there is one interrupt for those that completed
// inside the submission and at most one more for the rest; with aio=sync every request completes
// inside the submission, so exactly one.
TEST_P(VirtioBlockEngine, ABatchOfCompletionsIsSignalledWithOneInterrupt) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.h.enableMsix(true);
  r.h.programVector(0);
  r.h.modernNegotiate(virtio::feature::kVersion1);
  r.h.modernSetupQueue(0, r.drv.geometry());
  r.h.commonWrite(common::kQueueMsixVector, 2, 0);
  r.h.modernDriverOk();
  constexpr uint16_t kBatch = 16;
  std::vector<Req> reqs;
  std::vector<uint64_t> bufs;
  for (uint16_t i = 0; i < kBatch; ++i) {
    bufs.push_back(r.drv.alloc(4096, 4096));
    reqs.push_back(r.post(blk::kTypeIn, 8u * i, {{bufs.back(), 4096, true}}));
  }
  r.kick();
  // No event loop here: the test decides when completions are collected. Give the kernel time
  // to finish everything first, so that one round collects it all.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  r.blk->processCompletions();
  ASSERT_TRUE(r.waitUsed(kBatch));
  size_t fired = r.h.msi->fired().size();
  EXPECT_GE(fired, 1u);
  EXPECT_LE(fired, 2u) << "one interrupt per round, not per request";
  if (GetParam() == BlockEngineKind::Sync) {
    EXPECT_EQ(fired, 1u);
  }
  for (uint16_t i = 0; i < kBatch; ++i) {
    EXPECT_EQ(r.statusOf(reqs[i]), blk::kStatusOk) << i;
    EXPECT_EQ(readBytes(r.h.mem, bufs[i], 4096), imageBytes(8u * i * 512, 4096)) << i;
  }
  // A second batch, collected in one round again: one more interrupt at most per round.
  size_t before = r.h.msi->fired().size();
  for (uint16_t i = 0; i < kBatch; ++i) {
    reqs[i] = r.post(blk::kTypeIn, 8u * i, {{bufs[i], 4096, true}});
  }
  r.kick();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  r.blk->processCompletions();
  ASSERT_TRUE(r.waitUsed(2 * kBatch));
  EXPECT_LE(r.h.msi->fired().size() - before, 2u);
}

TEST_P(VirtioBlockEngine, FlushCompletesAfterEarlierWrites) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t buf = r.drv.alloc(4096, 4096);
  writeBytes(r.h.mem, buf, pattern(4096, 9));
  Req w = r.post(blk::kTypeOut, 16, {{buf, 4096, false}});
  Req f = r.post(blk::kTypeFlush, 0, {});
  r.kick();
  ASSERT_TRUE(r.waitUsed(2));
  EXPECT_EQ(r.statusOf(w), blk::kStatusOk);
  EXPECT_EQ(r.statusOf(f), blk::kStatusOk);
  auto used = r.drv.drainUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].id, w.head) << "the flush must not overtake the write";
  EXPECT_EQ(used[1].id, f.head);
  EXPECT_EQ(used[1].len, 1u);
  EXPECT_EQ(r.file.read(16 * 512, 4096), pattern(4096, 9));
  // A flush with nothing in flight completes at once.
  EXPECT_EQ(r.run(blk::kTypeFlush, 0, {}), blk::kStatusOk);
}

// Queue q's driver for the multi-queue tests: queue 0 is the rig's own; the others have their
// rings from 0x90000 and their buffers from 0xc0000, apart from each other and from queue 0's.
struct QueueDrivers {
  explicit QueueDrivers(BlkRig& r, uint16_t n) {
    all.push_back(&r.drv);
    for (uint16_t q = 1; q < n; ++q) {
      own.push_back(std::make_unique<MockDriver>(r.h.mem, 64, 0x90000 + 0x8000ULL * (q - 1)));
      own.back()->setArena(0xc0000 + 0x10000ULL * (q - 1), 0xd0000 + 0x10000ULL * (q - 1));
      all.push_back(own.back().get());
    }
  }
  std::vector<QueueGeometry> geometries() const {
    std::vector<QueueGeometry> g;
    for (auto* d : all) g.push_back(d->geometry());
    return g;
  }
  std::vector<std::unique_ptr<MockDriver>> own;
  std::vector<MockDriver*> all;
};

// VIRTIO_BLK_F_MQ (5.2.3) with num_queues (5.2.4): four request queues, each served on its own:
// a write on each queue, read back through the next one.
TEST_P(VirtioBlockEngine, MultiQueueServesEveryQueue) {
  BlkRig::queues = 4;
  BlkRig r;
  ASSERT_TRUE(r.blk);
  EXPECT_EQ(r.blk->queueCount(), 4u);
  EXPECT_EQ(r.h.modernRead(virtio::VirtioPciTransport::kDeviceOffset + 34, 2), 4u);
  ASSERT_TRUE(r.h.modernDeviceFeatures() & kFeatureMq);
  QueueDrivers qd(r, 4);
  r.h.modernInit(virtio::feature::kVersion1 | kFeatureMq, qd.geometries());
  ASSERT_EQ(r.status() & status::kNeedsReset, 0);
  for (uint16_t q = 0; q < 4; ++q) {
    MockDriver& d = *qd.all[q];
    uint64_t buf = d.alloc(4096, 4096);
    writeBytes(r.h.mem, buf, pattern(4096, static_cast<uint8_t>(40 + q)));
    Req w = r.postOn(d, blk::kTypeOut, 64u * q, {{buf, 4096, false}});
    r.h.kickModern(q);
    ASSERT_TRUE(r.waitUsedOn(d, 1)) << "queue " << q;
    EXPECT_EQ(r.statusOf(w), blk::kStatusOk) << "queue " << q;
    EXPECT_EQ(r.file.read(64u * q * 512, 4096), pattern(4096, static_cast<uint8_t>(40 + q)));
  }
  for (uint16_t q = 0; q < 4; ++q) {
    MockDriver& d = *qd.all[(q + 1) % 4];
    uint64_t buf = d.alloc(4096, 4096);
    Req rd = r.postOn(d, blk::kTypeIn, 64u * q, {{buf, 4096, true}});
    Req fl = r.postOn(d, blk::kTypeFlush, 0, {});
    r.h.kickModern(static_cast<uint16_t>((q + 1) % 4));
    ASSERT_TRUE(r.waitUsedOn(d, 3)) << "queue " << (q + 1) % 4;
    EXPECT_EQ(r.statusOf(rd), blk::kStatusOk);
    EXPECT_EQ(r.statusOf(fl), blk::kStatusOk);
    EXPECT_EQ(readBytes(r.h.mem, buf, 4096), pattern(4096, static_cast<uint8_t>(40 + q)));
  }
  for (uint16_t q = 0; q < 4; ++q) {
    EXPECT_EQ(qd.all[q]->usedIdx(), 3u) << "queue " << q << ": its own requests only";
  }
  EXPECT_EQ(r.blk->failedRequests(), 0u);
}

// The guest's queue choices (docs/security.md, Ember's own cases: virtio-blk request queues):
// a kick for a queue index >= num_queues, a kick for a queue the driver left disabled, and a
// ring set up past requestq1 without VIRTIO_BLK_F_MQ do nothing; the enabled queues go on.
TEST(Hostile, BlkQueueIndexPastNumQueuesIsIgnored) {
  BlkRig::queues = 2;
  BlkRig r;
  BlkRig::queues = 1;
  ASSERT_TRUE(r.blk);
  QueueDrivers qd(r, 2);
  r.h.modernInit(virtio::feature::kVersion1 | kFeatureMq, qd.geometries());
  uint64_t buf = r.drv.alloc(4096, 4096);
  Req rd = r.post(blk::kTypeIn, 0, {{buf, 4096, true}});
  for (uint16_t q : {2, 3, 63, 64, 0xffff}) {
    r.h.modernWrite(virtio::VirtioPciTransport::kNotifyOffset +
                        virtio::VirtioPciTransport::kNotifyMultiplier * 1ULL * (q % 64),
                    2, q);
  }
  r.blk->notify(2);  // past the transport too: straight to the device
  r.blk->notify(0xffff);
  r.blk->processCompletions();
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
  r.kick();
  ASSERT_TRUE(r.waitUsed(1));
  EXPECT_EQ(r.statusOf(rd), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, buf, 4096), imageBytes(0, 4096));
}

TEST(Hostile, BlkOnlySomeQueuesEnabled) {
  BlkRig::queues = 4;
  BlkRig r;
  BlkRig::queues = 1;
  ASSERT_TRUE(r.blk);
  QueueDrivers qd(r, 4);
  r.h.modernNegotiate(virtio::feature::kVersion1 | kFeatureMq);
  r.h.modernSetupQueue(0, qd.all[0]->geometry());
  r.h.modernSetupQueue(2, qd.all[2]->geometry());  // 1 and 3 stay disabled
  r.h.modernDriverOk();
  ASSERT_EQ(r.status() & status::kNeedsReset, 0);
  // Requests in queue 1's ring memory: the device does not know the ring, and does not look.
  uint64_t b1 = qd.all[1]->alloc(4096, 4096);
  r.postOn(*qd.all[1], blk::kTypeIn, 0, {{b1, 4096, true}});
  r.h.kickModern(1);
  r.h.kickModern(3);
  for (uint16_t q : {0, 2}) {
    MockDriver& d = *qd.all[q];
    uint64_t buf = d.alloc(4096, 4096);
    Req rd = r.postOn(d, blk::kTypeIn, 8u * q, {{buf, 4096, true}});
    r.h.kickModern(q);
    ASSERT_TRUE(r.waitUsedOn(d, 1)) << "queue " << q;
    EXPECT_EQ(r.statusOf(rd), blk::kStatusOk);
    EXPECT_EQ(readBytes(r.h.mem, buf, 4096), imageBytes(8u * q * 512, 4096));
  }
  EXPECT_EQ(qd.all[1]->usedIdx(), 0u);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST(Hostile, BlkSecondQueueWithoutMqIsNotServed) {
  BlkRig::queues = 2;
  BlkRig r;
  BlkRig::queues = 1;
  ASSERT_TRUE(r.blk);
  QueueDrivers qd(r, 2);
  log::ScopedLogCapture logs;
  r.h.modernInit(virtio::feature::kVersion1, qd.geometries());  // no VIRTIO_BLK_F_MQ
  EXPECT_TRUE(logs.contains("queue 1 enabled without VIRTIO_BLK_F_MQ"))
      << ::testing::PrintToString(logs.lines());
  uint64_t b1 = qd.all[1]->alloc(4096, 4096);
  Req ignored = r.postOn(*qd.all[1], blk::kTypeIn, 0, {{b1, 4096, true}});
  r.h.kickModern(1);
  uint64_t b0 = r.drv.alloc(4096, 4096);
  Req rd = r.post(blk::kTypeIn, 8, {{b0, 4096, true}});
  r.kick();
  ASSERT_TRUE(r.waitUsed(1));
  EXPECT_EQ(r.statusOf(rd), blk::kStatusOk);
  EXPECT_EQ(qd.all[1]->usedIdx(), 0u) << "requestq2 does not exist without MQ";
  EXPECT_EQ(r.statusOf(ignored), 0xff);
}

// PATCH /drives' medium change: requests in flight when it comes complete on the old medium
// (status OK, data from the old image), every later one goes to the new medium, the capacity
// reads the new size, the configuration generation moves and the change is signalled (ISR bit
// 1 on INTx); a new medium of the other read-only setting is refused, changing nothing.
TEST_P(VirtioBlockEngine, ReplaceMediumDrainsInFlightRequestsThenServesTheNewImage) {
  BlkRig r(4 * kMiB, false, "/tmp", /*queue_size=*/128);
  ASSERT_TRUE(r.blk);
  r.init();
  r.drv.setArena(kRegionBoundary, 2 * kMiB);
  constexpr int kRequests = 16;
  constexpr uint32_t kLen = 32 * 1024;
  std::vector<Req> reads;
  std::vector<uint64_t> bufs;
  for (int i = 0; i < kRequests; ++i) {
    bufs.push_back(r.drv.alloc(kLen, 4096));
    reads.push_back(r.post(blk::kTypeIn, (kLen / 512) * i, {{bufs.back(), kLen, true}}));
  }
  r.kick();  // in flight (the sync engine has finished them already)
  const uint64_t dev = virtio::VirtioPciTransport::kDeviceOffset;
  EXPECT_EQ(r.h.modernRead(dev + 0, 8), 4 * kMiB / 512);
  uint64_t generation = r.h.commonRead(common::kConfigGeneration, 1);
  (void)r.h.modernRead(virtio::VirtioPciTransport::kIsrOffset, 1);  // clear the ISR

  TempFile next(6 * kMiB, "/tmp", /*fill=*/false);  // zeroes
  ASSERT_TRUE(next.ok());
  auto ro = BlockFile::open(next.path(), /*read_only=*/true);
  ASSERT_TRUE(ro.ok());
  auto refused = r.blk->replaceMedium(std::move(*ro));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("must be writable"), std::string::npos);
  EXPECT_EQ(r.h.modernRead(dev + 0, 8), 4 * kMiB / 512) << "a refusal changes nothing";

  auto f = BlockFile::open(next.path(), false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(r.blk->replaceMedium(std::move(*f)).ok());
  // Every request in flight was completed, from the old image, before the change returned.
  EXPECT_EQ(r.drv.usedIdx(), kRequests);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(r.statusOf(reads[i]), blk::kStatusOk) << i;
    EXPECT_EQ(readBytes(r.h.mem, bufs[i], kLen), imageBytes(uint64_t{kLen} * i, kLen)) << i;
  }
  EXPECT_EQ(r.h.modernRead(dev + 0, 8), 6 * kMiB / 512);
  EXPECT_NE(r.h.commonRead(common::kConfigGeneration, 1), generation);
  EXPECT_EQ(r.h.modernRead(virtio::VirtioPciTransport::kIsrOffset, 1) & virtio::kIsrConfig,
            virtio::kIsrConfig);
  EXPECT_EQ(r.blk->name(), "virtio-blk " + next.path());
  // Later requests go to the new medium: a write beyond the old capacity lands in the new file,
  // and a read of the start gives the new image's zeroes.
  auto data = pattern(4096, 7);
  uint64_t wbuf = r.drv.alloc(4096, 4096);
  writeBytes(r.h.mem, wbuf, data);
  EXPECT_EQ(r.run(blk::kTypeOut, 5 * kMiB / 512, {{wbuf, 4096, false}}), blk::kStatusOk);
  EXPECT_EQ(next.read(5 * kMiB, 4096), data);
  uint64_t rbuf = r.drv.alloc(4096, 4096);
  EXPECT_EQ(r.run(blk::kTypeIn, 0, {{rbuf, 4096, true}}), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, rbuf, 4096), std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(r.file.read(0, 4096), imageBytes(0, 4096)) << "the old image is untouched";
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST(VirtioBlock, GetIdReturnsTheSerial) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t buf = r.drv.alloc(32);
  fillBytes(r.h.mem, buf, 0xab, 32);
  Req g = r.post(blk::kTypeGetId, 0, {{buf, 32, true}});
  r.kick();
  ASSERT_TRUE(r.waitUsed(1));
  EXPECT_EQ(r.statusOf(g), blk::kStatusOk);
  auto id = readBytes(r.h.mem, buf, 32);
  std::vector<uint8_t> want(kSerial, kSerial + std::strlen(kSerial));
  want.resize(20, 0);
  want.resize(32, 0xab);  // nothing past the 20 ID bytes is written
  EXPECT_EQ(id, want);
  EXPECT_EQ(r.drv.popUsed()->len, 21u);
}

TEST(VirtioBlock, ReadOnlyDiskRefusesWritesAndLeavesTheFileUnchanged) {
  BlkRig r(kImageSize, /*read_only=*/true);
  ASSERT_TRUE(r.blk);
  EXPECT_TRUE(r.h.modernDeviceFeatures() & kFeatureRo);
  r.init(virtio::feature::kVersion1 | kFeatureRo);
  uint64_t buf = r.drv.alloc(4096, 4096);
  writeBytes(r.h.mem, buf, pattern(4096, 3));
  log::ScopedLogCapture logs;
  EXPECT_EQ(r.run(blk::kTypeOut, 0, {{buf, 4096, false}}), blk::kStatusIoErr);
  EXPECT_TRUE(logs.contains("write to a read-only disk")) << ::testing::PrintToString(logs.lines());
  EXPECT_EQ(r.file.read(0, 4096), imageBytes(0, 4096));
  EXPECT_EQ(r.run(blk::kTypeIn, 0, {{buf, 4096, true}}), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, buf, 4096), imageBytes(0, 4096));
  EXPECT_EQ(r.run(blk::kTypeFlush, 0, {}), blk::kStatusOk);
}

// ---- hostile guests ----

TEST(Hostile, Case29_WriteToReadOnlyDiskEndToEnd) {
  BlkRig r(kImageSize, /*read_only=*/true);
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t buf = r.drv.alloc(8192, 4096);
  fillBytes(r.h.mem, buf, 0x77, 8192);
  EXPECT_EQ(r.run(blk::kTypeOut, 64, {{buf, 8192, false}}), blk::kStatusIoErr);
  EXPECT_EQ(r.file.read(64 * 512, 8192), imageBytes(64 * 512, 8192));
  EXPECT_EQ(r.blk->failedRequests(), 1u);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST(Hostile, Case27_OutOfRangeAndMisalignedEndToEnd) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t buf = r.drv.alloc(4096, 4096);
  fillBytes(r.h.mem, buf, 0xee, 4096);
  log::ScopedLogCapture logs;
  EXPECT_EQ(r.run(blk::kTypeIn, kImageSize / 512 - 1, {{buf, 1024, true}}), blk::kStatusIoErr);
  EXPECT_EQ(r.run(blk::kTypeIn, ~0ULL, {{buf, 512, true}}), blk::kStatusIoErr);
  EXPECT_EQ(r.run(blk::kTypeOut, 0, {{buf, 700, false}}), blk::kStatusIoErr);
  EXPECT_EQ(r.file.read(0, 4096), imageBytes(0, 4096)) << "no file I/O";
  EXPECT_EQ(readBytes(r.h.mem, buf, 4096), std::vector<uint8_t>(4096, 0xee)) << "no guest I/O";
  EXPECT_TRUE(logs.contains("beyond the capacity")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(logs.contains("not a multiple of 512"));
  EXPECT_TRUE(logs.contains("virtio-blk"));
  // The device keeps working.
  EXPECT_EQ(r.run(blk::kTypeIn, 0, {{buf, 512, true}}), blk::kStatusOk);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST(Hostile, Case28_RejectedChainsAreReturnedAndTheQueueGoesOn) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  log::ScopedLogCapture logs;
  // Header-only chain.
  uint64_t hdr = r.drv.alloc(16);
  r.header(hdr, blk::kTypeIn, 0);
  uint16_t head = r.drv.post({{hdr, 16, false}});
  // Writable header.
  uint64_t hdr2 = r.drv.alloc(16), st2 = r.drv.alloc(1);
  r.header(hdr2, blk::kTypeIn, 0);
  uint16_t head2 = r.drv.post({{hdr2, 16, true}, {st2, 1, true}});
  // Read with device-readable data.
  uint64_t buf = r.drv.alloc(512);
  Req wrong = r.post(blk::kTypeIn, 0, {{buf, 512, false}});
  r.kick();
  ASSERT_TRUE(r.waitUsed(3));
  auto used = r.drv.drainUsed();
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(used[0].id, head);
  EXPECT_EQ(used[1].id, head2);
  EXPECT_EQ(used[2].id, wrong.head);
  for (const auto& u : used) EXPECT_EQ(u.len, 0u);
  EXPECT_EQ(r.statusOf(wrong), 0xff) << "no status for a rejected chain";
  EXPECT_TRUE(logs.contains("rejected request")) << ::testing::PrintToString(logs.lines());
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
  EXPECT_EQ(r.run(blk::kTypeIn, 0, {{buf, 512, true}}), blk::kStatusOk);
}

TEST(Hostile, Case08_ZeroLengthDescriptorsEndToEnd) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t buf = r.drv.alloc(512);
  Req zero_data = r.post(blk::kTypeIn, 0, {{buf, 0, true}});
  uint64_t hdr = r.drv.alloc(16), st = r.drv.alloc(1);
  r.header(hdr, blk::kTypeFlush, 0);
  r.drv.post({{hdr, 16, false}, {st, 0, true}});  // zero-length status
  r.kick();
  ASSERT_TRUE(r.waitUsed(2));
  for (const auto& u : r.drv.drainUsed()) EXPECT_EQ(u.len, 0u);
  EXPECT_EQ(r.statusOf(zero_data), 0xff);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST(Hostile, Case30_UnknownTypeAndShortGetIdEndToEnd) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  EXPECT_EQ(r.run(42, 0, {}), blk::kStatusUnsupported);
  uint64_t buf = r.drv.alloc(19);
  fillBytes(r.h.mem, buf, 0xab, 19);
  EXPECT_EQ(r.run(blk::kTypeGetId, 0, {{buf, 19, true}}), blk::kStatusIoErr);
  EXPECT_EQ(readBytes(r.h.mem, buf, 19), std::vector<uint8_t>(19, 0xab));
}

TEST(Hostile, Case10_BufferStraddlingTwoRegionsReadsAndWritesCorrectly) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t straddle = kRegionBoundary - 1000;  // 1000 bytes in region 0, 3096 in region 1
  EXPECT_EQ(r.run(blk::kTypeIn, 40, {{straddle, 4096, true}}), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, straddle, 4096), imageBytes(40 * 512, 4096));
  auto data = pattern(4096, 77);
  writeBytes(r.h.mem, straddle, data);
  EXPECT_EQ(r.run(blk::kTypeOut, 80, {{straddle, 4096, false}}), blk::kStatusOk);
  EXPECT_EQ(r.file.read(80 * 512, 4096), data);
  // A buffer running from RAM into the hole is refused before any I/O: NEEDS_RESET.
  Req bad = r.post(blk::kTypeIn, 0, {{kHoleStart - 512, 1024, true}});
  r.kick();
  EXPECT_NE(r.status() & status::kNeedsReset, 0);
  EXPECT_EQ(r.statusOf(bad), 0xff);
  EXPECT_EQ(r.drv.usedIdx(), 3) << "the broken chain is still returned";
}

TEST(Hostile, Case15_BrokenChainThroughBlockReachesUsedRing) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t hdr = r.drv.alloc(16);
  r.header(hdr, blk::kTypeIn, 0);
  r.drv.writeDesc(10, hdr, 16, virtio::desc::kNext, 11);
  r.drv.writeDesc(11, hdr, 16, virtio::desc::kNext, 10);
  r.drv.publish(10);
  log::ScopedLogCapture logs;
  r.kick();
  auto used = r.drv.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, 10u);
  EXPECT_EQ(used->len, 0u);
  EXPECT_NE(r.status() & status::kNeedsReset, 0);
  EXPECT_TRUE(logs.contains("device needs reset")) << ::testing::PrintToString(logs.lines());
}

TEST(Hostile, Case04_AvailIndexJumpThroughBlock) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  r.drv.setAvailIdx(1000);
  r.kick();
  EXPECT_NE(r.status() & status::kNeedsReset, 0);
  EXPECT_EQ(r.drv.usedIdx(), 0);
  r.blk->processCompletions();
  EXPECT_EQ(r.drv.usedIdx(), 0);
}

TEST_P(HostileEngine, Case05_InFlightCappedWithRealAio) {
  BlkRig r(kImageSize, false, "/tmp", /*queue_size=*/8);
  ASSERT_TRUE(r.blk);
  r.init(virtio::feature::kVersion1 | virtio::feature::kIndirectDesc);
  // Eight requests, one indirect descriptor each: the queue is full.
  std::vector<uint16_t> heads;
  std::vector<uint64_t> statuses;
  for (int i = 0; i < 8; ++i) {
    uint64_t hdr = r.drv.alloc(16), st = r.drv.alloc(1), buf = r.drv.alloc(4096, 4096);
    uint64_t table = r.drv.alloc(48);
    r.header(hdr, blk::kTypeIn, 8 * i);
    fillBytes(r.h.mem, st, 0xff, 1);
    heads.push_back(
        r.drv.postIndirect({{hdr, 16, false}, {buf, 4096, true}, {st, 1, true}}, table));
    statuses.push_back(st);
  }
  r.kick();
  // The guest re-posts all eight (never consuming completions) and kicks again: the device takes
  // them only as earlier ones complete (requests the kernel finishes inside io_submit, page-cache
  // hits, are completed at once), every chain is completed once, and nothing breaks.
  for (uint16_t head : heads) r.drv.publish(head);
  r.kick();
  EXPECT_LE(r.drv.usedIdx(), 16);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
  ASSERT_TRUE(r.waitUsed(16));
  EXPECT_EQ(r.drv.usedIdx(), 16);
  for (uint64_t st : statuses) EXPECT_EQ(readBytes(r.h.mem, st, 1)[0], blk::kStatusOk);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST_P(HostileEngine, Case25_ResetWithIoInFlightWritesNothingAfterwards) {
  BlkRig r(4 * kMiB, false, "/tmp", /*queue_size=*/128);  // 32 chains of 3 descriptors
  ASSERT_TRUE(r.blk);
  r.init();
  r.drv.setArena(kRegionBoundary, 2 * kMiB);  // region 1 holds this test's buffers
  constexpr int kRequests = 32;
  constexpr uint32_t kLen = 24 * 1024;
  std::vector<Req> reqs;
  std::vector<uint64_t> bufs;
  for (int i = 0; i < kRequests; ++i) {
    uint64_t buf = r.drv.alloc(kLen, 4096);
    bufs.push_back(buf);
    reqs.push_back(
        r.post(i % 2 ? blk::kTypeIn : blk::kTypeOut, 128 * i, {{buf, kLen, i % 2 != 0}}));
  }
  r.kick();
  r.h.commonWrite(common::kDeviceStatus, 1, 0);  // reset while the requests are in flight
  EXPECT_EQ(r.status(), 0);
  // Poison every buffer the requests could still write, then give stale completions every
  // chance to land.
  for (int i = 0; i < kRequests; ++i) {
    fillBytes(r.h.mem, bufs[i], 0xee, kLen);
    fillBytes(r.h.mem, reqs[i].status, 0xee, 1);
  }
  uint16_t used_before = r.drv.usedIdx();
  auto used_ring = readBytes(r.h.mem, r.drv.geometry().used, 4 + 8 * r.drv.size());
  for (int i = 0; i < 20; ++i) {
    r.blk->processCompletions();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(readBytes(r.h.mem, bufs[i], kLen), std::vector<uint8_t>(kLen, 0xee)) << i;
    EXPECT_EQ(readBytes(r.h.mem, reqs[i].status, 1)[0], 0xee) << i;
  }
  EXPECT_EQ(r.drv.usedIdx(), used_before);
  EXPECT_EQ(readBytes(r.h.mem, r.drv.geometry().used, 4 + 8 * r.drv.size()), used_ring);
  // The device comes back after re-initialisation, with all its request slots free: a full
  // queue of 256 requests (one indirect descriptor each) is in flight at once.
  MockDriver fresh(r.h.mem, 256, 0x60000);
  fresh.setArena(0x70000, kRegionBoundary);
  r.h.modernInit(virtio::feature::kVersion1 | virtio::feature::kIndirectDesc, {fresh.geometry()});
  std::vector<uint64_t> statuses;
  for (int i = 0; i < 256; ++i) {
    uint64_t hdr = fresh.alloc(16), st = fresh.alloc(1), buf = fresh.alloc(512);
    uint64_t table = fresh.alloc(48);
    r.header(hdr, blk::kTypeIn, i);
    fillBytes(r.h.mem, st, 0xff, 1);
    fresh.postIndirect({{hdr, 16, false}, {buf, 512, true}, {st, 1, true}}, table);
    statuses.push_back(st);
  }
  r.h.kickModern(0);
  ASSERT_TRUE(
      pollUntil([&] { return fresh.usedIdx() >= 256; }, [&] { r.blk->processCompletions(); }));
  for (uint64_t st : statuses) EXPECT_EQ(readBytes(r.h.mem, st, 1)[0], blk::kStatusOk);
  EXPECT_EQ(r.h.modernStatus() & status::kNeedsReset, 0);
}

TEST_P(HostileEngine, Case25_ResetRacingCompletionsOnTheEventLoopThread) {
  // As in a running VMM: completions are handled on the event-loop thread while a vCPU (this
  // thread) kicks and then resets the device at an arbitrary moment.
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok()) << loop.error().message;
  (*loop)->start();
  {
    BlkRig r(4 * kMiB, false, "/tmp", 128, true, loop->get());
    ASSERT_TRUE(r.blk);
    constexpr int kRequests = 32;
    constexpr uint32_t kLen = 16 * 1024;
    for (int round = 0; round < 6; ++round) {
      SCOPED_TRACE(round);
      MockDriver drv(r.h.mem, 128, 0x10000);
      drv.setArena(kRegionBoundary, 2 * kMiB);
      r.h.modernInit(virtio::feature::kVersion1, {drv.geometry()});
      std::vector<uint64_t> bufs, statuses;
      for (int i = 0; i < kRequests; ++i) {
        uint64_t hdr = drv.alloc(16), st = drv.alloc(1), buf = drv.alloc(kLen, 4096);
        r.header(hdr, blk::kTypeIn, 32 * i);
        fillBytes(r.h.mem, st, 0xff, 1);
        drv.post({{hdr, 16, false}, {buf, kLen, true}, {st, 1, true}});
        bufs.push_back(buf);
        statuses.push_back(st);
      }
      r.h.kickModern(0);
      std::this_thread::sleep_for(std::chrono::microseconds(100 * round));
      r.h.commonWrite(common::kDeviceStatus, 1, 0);
      uint16_t used = drv.usedIdx();
      for (int i = 0; i < kRequests; ++i) {
        fillBytes(r.h.mem, bufs[i], 0xee, kLen);
        fillBytes(r.h.mem, statuses[i], 0xee, 1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      for (int i = 0; i < kRequests; ++i) {
        EXPECT_EQ(readBytes(r.h.mem, bufs[i], kLen), std::vector<uint8_t>(kLen, 0xee)) << i;
        EXPECT_EQ(readBytes(r.h.mem, statuses[i], 1)[0], 0xee) << i;
      }
      EXPECT_EQ(drv.usedIdx(), used);
    }
    // Finally a run to completion, served by the loop thread alone.
    MockDriver drv(r.h.mem, 128, 0x10000);
    r.h.modernInit(virtio::feature::kVersion1, {drv.geometry()});
    uint64_t hdr = drv.alloc(16), st = drv.alloc(1), buf = drv.alloc(4096, 4096);
    r.header(hdr, blk::kTypeIn, 0);
    drv.post({{hdr, 16, false}, {buf, 4096, true}, {st, 1, true}});
    r.h.kickModern(0);
    EXPECT_TRUE(pollUntil([&] { return drv.usedIdx() == 1; }, [] {}));
    EXPECT_EQ(readBytes(r.h.mem, st, 1)[0], blk::kStatusOk);
    EXPECT_EQ(readBytes(r.h.mem, buf, 4096), imageBytes(0, 4096));
  }
  (*loop)->stop();
}

TEST(Hostile, Case26_BusMasterOffAlsoStopsCompletionDrivenProcessing) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.h.setCommand(pci::cfg::kCommandMemory | pci::cfg::kCommandBusMaster);
  r.init();
  auto read = [&](uint64_t sector) {
    uint64_t buf = r.drv.alloc(4096, 4096);
    fillBytes(r.h.mem, buf, 0xee, 4096);
    return std::make_pair(r.post(blk::kTypeIn, sector, {{buf, 4096, true}}), buf);
  };
  std::vector<std::pair<Req, uint64_t>> first, second;
  for (int i = 0; i < 4; ++i) first.push_back(read(8 * i));
  r.kick();                                  // four reads in flight
  r.h.setCommand(pci::cfg::kCommandMemory);  // bus mastering off
  for (int i = 0; i < 4; ++i) second.push_back(read(64 + 8 * i));
  r.kick();  // deferred by the transport
  // Completions of the first batch arrive; the second batch must not be started.
  ASSERT_TRUE(r.waitUsed(4));
  for (int i = 0; i < 20; ++i) {
    r.blk->processCompletions();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(r.drv.usedIdx(), 4);
  for (const auto& [req, buf] : second) {
    EXPECT_EQ(r.statusOf(req), 0xff);
    EXPECT_EQ(readBytes(r.h.mem, buf, 4096), std::vector<uint8_t>(4096, 0xee));
  }
  // Bus mastering back on: the second batch runs.
  r.h.setCommand(pci::cfg::kCommandMemory | pci::cfg::kCommandBusMaster);
  ASSERT_TRUE(r.waitUsed(8));
  for (const auto& [req, buf] : second) EXPECT_EQ(r.statusOf(req), blk::kStatusOk);
}

TEST_P(HostileEngine, Case37_EnospcFailsOnlyThatRequest) {
  TmpfsMount mnt(64);
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  BlkRig r(kImageSize, false, mnt.dir(), 64, /*fill=*/false);  // sparse: 1 MiB on 64 KiB
  ASSERT_TRUE(r.blk);
  r.init();
  uint64_t small = r.drv.alloc(4096, 4096), big = r.drv.alloc(128 * 1024, 4096);
  writeBytes(r.h.mem, small, pattern(4096, 1));
  fillBytes(r.h.mem, big, 0x42, 128 * 1024);
  EXPECT_EQ(r.run(blk::kTypeOut, 0, {{small, 4096, false}}), blk::kStatusOk);
  log::ScopedLogCapture logs;
  EXPECT_EQ(r.run(blk::kTypeOut, 512, {{big, 128 * 1024, false}}), blk::kStatusIoErr);
  EXPECT_TRUE(logs.contains("write of 131072 bytes at sector 512 failed"))
      << ::testing::PrintToString(logs.lines());
  EXPECT_EQ(r.blk->failedRequests(), 1u);
  // The next requests succeed.
  writeBytes(r.h.mem, small, pattern(4096, 2));
  EXPECT_EQ(r.run(blk::kTypeOut, 0, {{small, 4096, false}}), blk::kStatusOk);
  EXPECT_EQ(r.file.read(0, 4096), pattern(4096, 2));
  EXPECT_EQ(r.run(blk::kTypeIn, 0, {{big, 4096, true}}), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, big, 4096), pattern(4096, 2));
  EXPECT_EQ(r.run(blk::kTypeFlush, 0, {}), blk::kStatusOk);
  EXPECT_EQ(r.blk->failedRequests(), 1u);
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

// An injected failing backend: the image's descriptors are swapped, behind the device's back,
// for read-only ones, so that every write is refused by the kernel (EBADF: at io_submit for
// libaio, in the CQE for io_uring, from pwritev for sync) while reads go on. In one batch of read,
// write, read only the write fails; once the descriptors are back, writes succeed again.
TEST_P(HostileEngine, Case37_InjectedBackendFailureFailsOnlyThatRequest) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  const BlockFile& f = r.blk->file();
  std::vector<std::pair<int, int>> saved;  // (device fd, saved duplicate)
  for (int fd : {f.bufferedFd(), f.directFd()}) {
    if (fd < 0) continue;
    int ro = open(r.file.path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ro, 0);
    saved.emplace_back(fd, dup(fd));
    ASSERT_EQ(dup2(ro, fd), fd);
    close(ro);
  }
  uint64_t a = r.drv.alloc(4096, 4096), b = r.drv.alloc(4096, 4096), c = r.drv.alloc(4096, 4096);
  writeBytes(r.h.mem, b, pattern(4096, 3));
  log::ScopedLogCapture logs;
  Req read1 = r.post(blk::kTypeIn, 0, {{a, 4096, true}});
  Req write = r.post(blk::kTypeOut, 8, {{b, 4096, false}});
  Req read2 = r.post(blk::kTypeIn, 16, {{c, 4096, true}});
  r.kick();
  ASSERT_TRUE(r.waitUsed(3));
  EXPECT_EQ(r.statusOf(read1), blk::kStatusOk);
  EXPECT_EQ(r.statusOf(write), blk::kStatusIoErr);
  EXPECT_EQ(r.statusOf(read2), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, a, 4096), imageBytes(0, 4096));
  EXPECT_EQ(readBytes(r.h.mem, c, 4096), imageBytes(16 * 512, 4096));
  EXPECT_EQ(r.file.read(8 * 512, 4096), imageBytes(8 * 512, 4096)) << "the refused write landed";
  EXPECT_EQ(r.blk->failedRequests(), 1u);
  EXPECT_TRUE(logs.contains("write of 4096 bytes at sector 8 failed: Bad file descriptor"))
      << ::testing::PrintToString(logs.lines());
  // The backend recovers: the same write now succeeds.
  for (auto [fd, copy] : saved) {
    ASSERT_EQ(dup2(copy, fd), fd);
    close(copy);
  }
  EXPECT_EQ(r.run(blk::kTypeOut, 8, {{b, 4096, false}}), blk::kStatusOk);
  EXPECT_EQ(r.file.read(8 * 512, 4096), pattern(4096, 3));
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

TEST_P(HostileEngine, Case37_ShrunkenImageReadPastEndFailsOnlyThatRequest) {
  BlkRig r;
  ASSERT_TRUE(r.blk);
  r.init();
  ASSERT_TRUE(r.file.truncate(256 * 1024));  // behind the device's back
  uint64_t buf = r.drv.alloc(8192, 4096);
  fillBytes(r.h.mem, buf, 0xee, 8192);
  log::ScopedLogCapture logs;
  EXPECT_EQ(r.run(blk::kTypeIn, 1024, {{buf, 4096, true}}), blk::kStatusIoErr);
  EXPECT_TRUE(logs.contains("short transfer")) << ::testing::PrintToString(logs.lines());
  EXPECT_EQ(r.run(blk::kTypeIn, 504, {{buf, 8192, true}}), blk::kStatusIoErr)
      << "a read across the new end is short too";
  EXPECT_EQ(r.blk->failedRequests(), 2u);
  EXPECT_EQ(r.run(blk::kTypeIn, 0, {{buf, 4096, true}}), blk::kStatusOk);
  EXPECT_EQ(readBytes(r.h.mem, buf, 4096), imageBytes(0, 4096));
  EXPECT_EQ(r.status() & status::kNeedsReset, 0);
}

}  // namespace
}  // namespace ember::devices
