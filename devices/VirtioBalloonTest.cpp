// VirtioBalloon through the virtio-pci transport with a mock driver: the target in config space
// and its configuration-change interrupt, `actual`, inflating (the pages really go back to the
// host: the mock guest memory is real anonymous memory, which reads back as zeroes once
// MADV_DONTNEED has dropped it), deflating, reset, the statistics queue, and hostile-guest case
// 35 (PFNs outside RAM, repeated, very many).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "devices/VirtioBalloon.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::devices {
namespace {

using namespace virtio::testing;
using T = virtio::VirtioPciTransport;
namespace status = virtio::status;

constexpr uint64_t kInflateBase = 0x10000, kDeflateBase = 0x50000, kStatsBase = 0x90000;
constexpr uint64_t kTarget = 256 * 4096;  // 256 pages
// Pages the tests balloon: region 1 (1-2 MiB) and region 2 (3-4 MiB), away from the rings and
// PFN arrays that live in region 0.
constexpr uint32_t kRegion1FirstPfn = 0x100, kRegion2FirstPfn = 0x300;
constexpr uint32_t kHighLastPfn = static_cast<uint32_t>(kHighRegionEnd / 4096 - 1);

struct BalloonRig {
  explicit BalloonRig(uint64_t target = kTarget)
      : h(makeDevice(target)),
        inflate(h.mem, 64, kInflateBase),
        deflate(h.mem, 64, kDeflateBase),
        stats(h.mem, 16, kStatsBase) {
    inflate.setArena(kInflateBase + 0x10000, kDeflateBase);
    deflate.setArena(kDeflateBase + 0x10000, kStatsBase);
    stats.setArena(kStatsBase + 0x10000, kRegionBoundary);
  }
  std::unique_ptr<virtio::VirtioDevice> makeDevice(uint64_t target) {
    auto d = std::make_unique<VirtioBalloon>(target);
    dev = d.get();
    return d;
  }
  void init(bool with_stats = false) {
    uint64_t f = virtio::feature::kVersion1 | (with_stats ? 1ULL << 1 : 0);
    if (with_stats) {
      h.modernInit(f, {inflate.geometry(), deflate.geometry(), stats.geometry()});
    } else {
      h.modernInit(f, {inflate.geometry(), deflate.geometry()});
    }
  }
  uint32_t cfg32(uint32_t off) {
    return static_cast<uint32_t>(h.modernRead(T::kDeviceOffset + off, 4));
  }
  void setActual(uint32_t v) { h.modernWrite(T::kDeviceOffset + 4, 4, v); }

  // Posts `pfns` as one buffer on `q` (0 inflate, 1 deflate), kicks, and expects it back.
  void send(uint16_t q, const std::vector<uint32_t>& pfns) {
    MockDriver& d = q == 0 ? inflate : deflate;
    uint64_t at = d.alloc(4 * pfns.size(), 4);
    writeBytes(h.mem, at,
               std::span(reinterpret_cast<const uint8_t*>(pfns.data()), 4 * pfns.size()));
    uint16_t before = d.usedIdx();
    d.post({{at, static_cast<uint32_t>(4 * pfns.size()), false}});
    h.kickModern(q);
    EXPECT_EQ(d.usedIdx(), static_cast<uint16_t>(before + 1)) << "buffer not returned";
    d.drainUsed();
  }
  void fillPage(uint32_t pfn, uint8_t v) { fillBytes(h.mem, uint64_t{pfn} * 4096, v, 4096); }
  bool pageIs(uint32_t pfn, uint8_t v) {
    return readBytes(h.mem, uint64_t{pfn} * 4096, 4096) == std::vector<uint8_t>(4096, v);
  }
  bool needsReset() { return h.modernStatus() & status::kNeedsReset; }

  VirtioBalloon* dev = nullptr;
  TransportHarness h;
  MockDriver inflate, deflate, stats;
};

TEST(VirtioBalloon, TargetInConfigAndAnnouncedAtActivation) {
  BalloonRig r;
  EXPECT_EQ(r.cfg32(0), 256u);  // num_pages
  EXPECT_EQ(r.cfg32(4), 0u);    // actual
  r.init();
  // No MSI-X: the configuration change shows in the ISR (bit 1) and raises INTx.
  uint8_t isr = static_cast<uint8_t>(r.h.modernRead(T::kIsrOffset, 1));
  EXPECT_TRUE(isr & 2) << "no configuration-change interrupt for the initial target";
  r.setActual(123);
  EXPECT_EQ(r.cfg32(4), 123u);
  EXPECT_EQ(r.dev->actualPages(), 123u);
  // num_pages is the device's: a driver write does not change it.
  r.h.modernWrite(T::kDeviceOffset, 4, 7);
  EXPECT_EQ(r.cfg32(0), 256u);
  // A new target raises a configuration change again.
  (void)r.h.modernRead(T::kIsrOffset, 1);
  r.dev->setTargetBytes(512 * 4096);
  EXPECT_EQ(r.cfg32(0), 512u);
  EXPECT_TRUE(r.h.modernRead(T::kIsrOffset, 1) & 2);
}

TEST(VirtioBalloon, InflateReleasesThePagesAndDeflateTakesThemBack) {
  BalloonRig r;
  r.init();
  std::vector<uint32_t> pfns;
  for (uint32_t i = 0; i < 16; ++i) pfns.push_back(kRegion1FirstPfn + i);
  for (uint32_t p : pfns) r.fillPage(p, 0xa5);
  r.fillPage(kRegion1FirstPfn + 16, 0x5a);  // its neighbour stays
  r.send(0, pfns);
  for (uint32_t p : pfns) EXPECT_TRUE(r.pageIs(p, 0)) << "page " << p << " was not given back";
  EXPECT_TRUE(r.pageIs(kRegion1FirstPfn + 16, 0x5a));
  EXPECT_EQ(r.dev->stats().inflated_pages, 16u);
  r.send(1, {pfns.begin(), pfns.begin() + 10});
  EXPECT_EQ(r.dev->stats().inflated_pages, 6u);
  // Deflating pages that are not in the balloon changes nothing.
  r.send(1, {kRegion2FirstPfn, kRegion2FirstPfn + 1});
  EXPECT_EQ(r.dev->stats().inflated_pages, 6u);
  // Deflated pages can be inflated again (not counted as repeats).
  r.send(0, {pfns[0], pfns[1]});
  EXPECT_EQ(r.dev->stats().inflated_pages, 8u);
  EXPECT_EQ(r.dev->stats().repeated_pfns, 0u);
  EXPECT_FALSE(r.needsReset());
}

// Neighbouring frames are given back as runs (one madvise each), in ascending or descending
// order, and a run that crosses from one RAM region into the next still releases every page.
TEST(VirtioBalloon, RunsOfPagesInEitherOrderAndAcrossRegionsAreReleased) {
  BalloonRig r;
  r.init();
  std::vector<uint32_t> pfns;
  for (uint32_t i = 0; i < 8; ++i) pfns.push_back(kRegion1FirstPfn + 40 + i);  // ascending
  for (uint32_t i = 8; i-- > 0;) pfns.push_back(kRegion1FirstPfn + 80 + i);    // descending
  // Region 0 ends at 1 MiB, where region 1 begins: its last two pages and region 1's first two
  // are neighbouring frames in two different mappings.
  for (uint32_t i = 0; i < 4; ++i) pfns.push_back(kRegion1FirstPfn - 2 + i);
  for (uint32_t p : pfns) r.fillPage(p, 0xa5);
  r.fillPage(kRegion1FirstPfn + 48, 0x5a);
  r.fillPage(kRegion1FirstPfn + 79, 0x5a);
  r.send(0, pfns);
  for (uint32_t p : pfns) EXPECT_TRUE(r.pageIs(p, 0)) << "page " << p << " was not given back";
  EXPECT_TRUE(r.pageIs(kRegion1FirstPfn + 48, 0x5a)) << "a run went one page too far";
  EXPECT_TRUE(r.pageIs(kRegion1FirstPfn + 79, 0x5a)) << "a run went one page too far";
  EXPECT_EQ(r.dev->stats().inflated_pages, pfns.size());
  r.send(1, pfns);
  EXPECT_EQ(r.dev->stats().inflated_pages, 0u);
  EXPECT_FALSE(r.needsReset());
}

TEST(VirtioBalloon, ResetEmptiesTheBalloon) {
  BalloonRig r;
  r.init();
  r.send(0, {kRegion1FirstPfn, kRegion1FirstPfn + 1});
  r.setActual(2);
  r.h.commonWrite(virtio::common::kDeviceStatus, 1, 0);
  EXPECT_EQ(r.dev->stats().inflated_pages, 0u);
  EXPECT_EQ(r.cfg32(4), 0u);
  // After a new initialisation the same pages may be inflated again.
  BalloonRig& s = r;
  s.inflate = MockDriver(s.h.mem, 64, kInflateBase);
  s.inflate.setArena(kInflateBase + 0x10000, kDeflateBase);
  s.deflate = MockDriver(s.h.mem, 64, kDeflateBase);
  s.init();
  s.send(0, {kRegion1FirstPfn, kRegion1FirstPfn + 1});
  EXPECT_EQ(r.dev->stats().inflated_pages, 2u);
  EXPECT_EQ(r.dev->stats().repeated_pfns, 0u);
}

TEST(Hostile, Case35_BalloonPfnsOutsideRamAreIgnored) {
  BalloonRig r;
  r.init();
  // The hole (2-3 MiB), just past the high region (4 GiB), the largest PFN, and a valid page.
  uint32_t hole = static_cast<uint32_t>(kHoleStart / 4096);
  std::vector<uint32_t> pfns{hole,        hole + 255,  kHighLastPfn + 1,
                             0xffffffffu, 0x7fffffffu, kRegion2FirstPfn};
  r.fillPage(kRegion2FirstPfn, 0x11);
  r.fillPage(kRegion2FirstPfn + 1, 0x22);
  r.send(0, pfns);
  auto s = r.dev->stats();
  EXPECT_EQ(s.invalid_pfns, 5u);
  EXPECT_EQ(s.inflated_pages, 1u);
  EXPECT_TRUE(r.pageIs(kRegion2FirstPfn, 0));
  EXPECT_TRUE(r.pageIs(kRegion2FirstPfn + 1, 0x22)) << "only the valid page is released";
  // The last page below 4 GiB is RAM in the mock: valid.
  r.send(0, {kHighLastPfn});
  EXPECT_EQ(r.dev->stats().inflated_pages, 2u);
  // Deflating outside RAM is ignored too; the queues keep working.
  r.send(1, {hole, 0xffffffffu});
  EXPECT_EQ(r.dev->stats().invalid_pfns, 7u);
  EXPECT_EQ(r.dev->stats().inflated_pages, 2u);
  EXPECT_FALSE(r.needsReset());
}

TEST(Hostile, Case35_RepeatedBalloonPfnsAreReleasedOnce) {
  BalloonRig r;
  r.init();
  uint32_t p = kRegion1FirstPfn + 3;
  r.send(0, {p, p, p});
  r.send(0, {p, kRegion1FirstPfn + 4, p});
  auto s = r.dev->stats();
  EXPECT_EQ(s.inflated_pages, 2u);
  EXPECT_EQ(s.repeated_pfns, 4u);
  // One deflate takes it out; a second deflate of it is a no-op.
  r.send(1, {p, p});
  EXPECT_EQ(r.dev->stats().inflated_pages, 1u);
  EXPECT_FALSE(r.needsReset());
}

TEST(Hostile, Case35_VeryManyBalloonPfnsAreBounded) {
  BalloonRig r;
  r.init();
  r.inflate.setArena(kInflateBase + 0x10000, kRegionBoundary);
  // 100000 PFNs in one buffer (390 KiB): PFNs 0x100.. cover region 1, the hole, region 2 and
  // far beyond RAM; then a chain of 64 one-page buffers repeating region 2.
  std::vector<uint32_t> many(100000);
  for (uint32_t i = 0; i < many.size(); ++i) many[i] = kRegion1FirstPfn + i;
  auto t0 = std::chrono::steady_clock::now();
  r.send(0, many);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto s = r.dev->stats();
  EXPECT_EQ(s.inflated_pages, 512u) << "region 1 and region 2, every page once";
  EXPECT_GE(s.invalid_pfns, 65536u - 512u) << "at least the first 64 Ki entries were validated";
  EXPECT_LE(s.invalid_pfns + s.inflated_pages, many.size());
  EXPECT_LT(secs, 2.0);
  std::vector<MockDriver::Buffer> chain;
  std::vector<uint32_t> page(1024);
  for (uint32_t i = 0; i < 1024; ++i) page[i] = kRegion2FirstPfn + (i % 256);
  for (int i = 0; i < 48; ++i) {
    uint64_t at = r.inflate.alloc(4096, 4);
    writeBytes(r.h.mem, at, std::span(reinterpret_cast<const uint8_t*>(page.data()), 4096));
    chain.push_back({at, 4096, false});
  }
  uint16_t before = r.inflate.usedIdx();
  r.inflate.post(chain);
  r.h.kickModern(0);
  EXPECT_EQ(r.inflate.usedIdx(), static_cast<uint16_t>(before + 1));
  EXPECT_EQ(r.dev->stats().inflated_pages, 512u);
  EXPECT_EQ(r.dev->stats().repeated_pfns, 48u * 1024u);
  EXPECT_FALSE(r.needsReset());
  // Still working.
  r.send(1, {kRegion1FirstPfn});
  EXPECT_EQ(r.dev->stats().inflated_pages, 511u);
}

TEST(VirtioBalloon, StatisticsAreReadFromTheStatsQueue) {
  BalloonRig r;
  r.init(/*with_stats=*/true);
  // 5.5.6.3: (le16 tag, le64 value) entries, packed.
  uint8_t entries[20] = {};
  uint16_t tag0 = 4, tag1 = 5;  // VIRTIO_BALLOON_S_MEMFREE, _MEMTOT
  uint64_t v0 = 1234 * 4096, v1 = 9999 * 4096;
  std::memcpy(entries, &tag0, 2);
  std::memcpy(entries + 2, &v0, 8);
  std::memcpy(entries + 10, &tag1, 2);
  std::memcpy(entries + 12, &v1, 8);
  uint64_t at = r.stats.alloc(sizeof entries);
  writeBytes(r.h.mem, at, entries);
  r.stats.post({{at, sizeof entries, false}});
  r.h.kickModern(2);
  auto s = r.dev->stats();
  EXPECT_EQ(s.guest_stats[4], v0);
  EXPECT_EQ(s.guest_stats[5], v1);
  EXPECT_FALSE(r.needsReset());
}

TEST(VirtioBalloon, StatisticsBufferIsHeldUntilTheDeviceWantsFreshNumbers) {
  // Regression: the device used to return the statistics buffer at once; a used stats buffer is
  // the device's request for new numbers (5.5.6.3), so a Linux guest answered at once and guest
  // and host looped forever.
  BalloonRig r;
  r.init(/*with_stats=*/true);
  uint8_t entries[10] = {4, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  uint64_t at = r.stats.alloc(sizeof entries);
  writeBytes(r.h.mem, at, entries);
  r.stats.post({{at, sizeof entries, false}});
  r.h.kickModern(2);
  EXPECT_EQ(r.dev->stats().guest_stats.size(), 1u);
  EXPECT_EQ(r.stats.usedIdx(), 0) << "returned at once: the driver is asked again immediately";
  // The host asks for fresh numbers: the buffer goes back, once.
  r.dev->requestStats();
  EXPECT_EQ(r.stats.usedIdx(), 1);
  r.dev->requestStats();
  EXPECT_EQ(r.stats.usedIdx(), 1);
  EXPECT_FALSE(r.needsReset());
}

// A snapshot's balloon state (issue 13): the bitmaps load into a device over the same RAM; a
// device that was never activated has none, and bytes claiming otherwise are refused.
TEST(VirtioBalloon, Hostile_SavedBitmapsMustMatchTheDevicesRam) {
  BalloonRig a;
  a.init();
  a.fillPage(300, 0x77);
  a.send(VirtioBalloon::kInflateQueue, {300, 301});
  StateWriter w;
  auto positions = a.dev->saveState(w);
  ASSERT_TRUE(positions.ok());
  std::vector<uint8_t> bytes = w.take();
  BalloonRig b;
  b.init();
  StateReader rb(bytes, "balloon");
  b.dev->loadState(rb);
  ASSERT_TRUE(rb.finish().ok()) << rb.finish().error().message;
  EXPECT_EQ(b.dev->stats().inflated_pages, a.dev->stats().inflated_pages);
  StateWriter again;
  ASSERT_TRUE(b.dev->saveState(again).ok());
  EXPECT_EQ(again.data(), bytes);
  BalloonRig never;
  StateReader rn(bytes, "balloon");
  never.dev->loadState(rn);
  auto f = rn.finish();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("bitmaps"), std::string::npos) << f.error().message;
}

}  // namespace
}  // namespace ember::devices
