// Bus: range registration and overlap refusal, offset dispatch, removal, concurrent dispatch.
// test-labels: threaded
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "kvm/Bus.h"

namespace ember {
namespace {

// Records the last access; reads return `tag` in every byte.
class RecordingDevice : public BusDevice {
 public:
  explicit RecordingDevice(uint8_t tag = 0) : tag_(tag) {}
  void read(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex_);
    last_offset_ = offset;
    last_size_ = data.size();
    ++reads_;
    std::fill(data.begin(), data.end(), tag_);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    last_offset_ = offset;
    last_size_ = data.size();
    last_written_.assign(data.begin(), data.end());
    ++writes_;
  }
  uint64_t lastOffset() const {
    std::lock_guard lock(mutex_);
    return last_offset_;
  }
  size_t lastSize() const {
    std::lock_guard lock(mutex_);
    return last_size_;
  }
  std::vector<uint8_t> lastWritten() const {
    std::lock_guard lock(mutex_);
    return last_written_;
  }
  int reads() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }
  int writes() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }

 private:
  uint8_t tag_;
  mutable std::mutex mutex_;
  uint64_t last_offset_ = ~0ULL;
  size_t last_size_ = 0;
  std::vector<uint8_t> last_written_;
  int reads_ = 0, writes_ = 0;
};

TEST(Bus, DispatchesWithOffsetsRelativeToTheRangeBase) {
  Bus bus("test");
  auto a = std::make_shared<RecordingDevice>(0xaa);
  auto b = std::make_shared<RecordingDevice>(0xbb);
  ASSERT_TRUE(bus.insert(0x3f8, 8, a).ok());
  ASSERT_TRUE(bus.insert(0x1000, 0x100, b).ok());
  EXPECT_EQ(bus.name(), "test");

  uint8_t byte = 0;
  ASSERT_TRUE(bus.read(0x3fd, std::span(&byte, 1)));
  EXPECT_EQ(byte, 0xaa);
  EXPECT_EQ(a->lastOffset(), 5u);
  EXPECT_EQ(a->lastSize(), 1u);

  uint8_t dword[4] = {};
  ASSERT_TRUE(bus.read(0x10fc, dword));
  EXPECT_EQ(b->lastOffset(), 0xfcu);
  EXPECT_EQ(b->lastSize(), 4u);
  EXPECT_EQ(dword[3], 0xbb);

  const uint8_t out[2] = {0x12, 0x34};
  ASSERT_TRUE(bus.write(0x1000, out));
  EXPECT_EQ(b->lastOffset(), 0u);
  EXPECT_EQ(b->lastWritten(), (std::vector<uint8_t>{0x12, 0x34}));
  EXPECT_EQ(a->writes(), 0);
}

TEST(Bus, AccessesOutsideOrAcrossRangesAreNotDispatched) {
  Bus bus("test");
  auto a = std::make_shared<RecordingDevice>(0xaa);
  auto b = std::make_shared<RecordingDevice>(0xbb);
  ASSERT_TRUE(bus.insert(0x100, 0x100, a).ok());
  ASSERT_TRUE(bus.insert(0x200, 0x10, b).ok());  // adjacent to a

  uint8_t two[2] = {0x55, 0x55};
  EXPECT_FALSE(bus.read(0xff, two));        // starts before a, runs into it
  EXPECT_FALSE(bus.read(0x1ff, two));       // starts in a, runs into b
  EXPECT_FALSE(bus.read(0x20f, two));       // starts in b, runs past its end
  EXPECT_FALSE(bus.read(0x210, two));       // after every range
  EXPECT_FALSE(bus.read(0x0, two));         // before every range
  EXPECT_FALSE(bus.read(UINT64_MAX, two));  // address + size would wrap
  EXPECT_EQ(two[0], 0x55);                  // untouched
  EXPECT_EQ(two[1], 0x55);
  EXPECT_FALSE(bus.write(0x1ff, two));
  EXPECT_FALSE(bus.write(0x20f, two));

  std::vector<uint8_t> huge(0x101);
  EXPECT_FALSE(bus.read(0x100, huge));  // longer than the whole range
  EXPECT_EQ(a->reads() + b->reads(), 0);
  EXPECT_EQ(a->writes() + b->writes(), 0);

  // The last bytes of each range are reachable.
  EXPECT_TRUE(bus.read(0x1fe, two));
  EXPECT_EQ(a->lastOffset(), 0xfeu);
  EXPECT_TRUE(bus.read(0x20e, two));
  EXPECT_EQ(b->lastOffset(), 0xeu);
  std::vector<uint8_t> whole(0x100);
  EXPECT_TRUE(bus.read(0x100, whole));
}

TEST(Bus, RefusesEveryShapeOfOverlap) {
  Bus bus("test");
  auto a = std::make_shared<RecordingDevice>();
  auto other = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.insert(0x100, 0x100, a).ok());

  struct Shape {
    const char* name;
    uint64_t base, len;
  };
  const Shape overlapping[] = {
      {"identical", 0x100, 0x100},
      {"same base, shorter", 0x100, 0x10},
      {"same base, longer", 0x100, 0x200},
      {"inside", 0x180, 0x10},
      {"same end", 0x1f0, 0x10},
      {"covers", 0x80, 0x200},
      {"left edge", 0xf0, 0x11},
      {"right edge", 0x1ff, 0x10},
      {"last byte", 0x1ff, 1},
      {"first byte", 0x100, 1},
      {"to the top", 0x0, UINT64_MAX},
  };
  for (const auto& s : overlapping) {
    SCOPED_TRACE(s.name);
    auto r = bus.insert(s.base, s.len, other);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::Busy);
    EXPECT_TRUE(bus.overlaps(s.base, s.len));
  }
  // Touching but not overlapping is fine, on either side.
  EXPECT_FALSE(bus.overlaps(0xf0, 0x10));
  EXPECT_FALSE(bus.overlaps(0x200, 0x10));
  ASSERT_TRUE(bus.insert(0xf0, 0x10, other).ok());
  ASSERT_TRUE(bus.insert(0x200, 0x10, other).ok());
  // A range spanning several existing ones, and a gap-filling one that is one byte too long.
  EXPECT_FALSE(bus.insert(0xe0, 0x200, other).ok());
  ASSERT_TRUE(bus.insert(0x300, 0x10, other).ok());
  EXPECT_FALSE(bus.insert(0x210, 0xf1, other).ok());
  EXPECT_TRUE(bus.insert(0x210, 0xf0, other).ok());

  // The original range still dispatches to its own device.
  uint8_t byte = 0;
  ASSERT_TRUE(bus.read(0x150, std::span(&byte, 1)));
  EXPECT_EQ(a->lastOffset(), 0x50u);
}

TEST(Bus, RefusesEmptyAndOverflowingRanges) {
  Bus bus("test");
  auto d = std::make_shared<RecordingDevice>();
  auto empty = bus.insert(0x100, 0, d);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::InvalidArgument);
  auto wraps = bus.insert(UINT64_MAX - 3, 8, d);
  ASSERT_FALSE(wraps.ok());
  EXPECT_EQ(wraps.error().code, Errc::InvalidArgument);
  EXPECT_FALSE(bus.insert(1, UINT64_MAX, d).ok());
  // Ending exactly at the top of the address space does not overflow.
  ASSERT_TRUE(bus.insert(UINT64_MAX - 8, 8, d).ok());
  uint8_t b[8] = {};
  EXPECT_TRUE(bus.read(UINT64_MAX - 8, b));
  EXPECT_FALSE(bus.read(UINT64_MAX - 7, b));
  EXPECT_FALSE(bus.overlaps(0, UINT64_MAX - 8));
  EXPECT_TRUE(bus.overlaps(0, UINT64_MAX));
  EXPECT_TRUE(bus.overlaps(UINT64_MAX - 1, 100));  // the end saturates instead of wrapping
}

TEST(Bus, OverlapsReportsClaimedAddresses) {
  Bus bus("test");
  EXPECT_FALSE(bus.overlaps(0, UINT64_MAX));
  ASSERT_TRUE(bus.insert(0x1000, 0x1000, std::make_shared<RecordingDevice>()).ok());
  EXPECT_TRUE(bus.overlaps(0x1000, 1));
  EXPECT_TRUE(bus.overlaps(0x1fff, 1));
  EXPECT_TRUE(bus.overlaps(0x0, 0x1001));
  EXPECT_FALSE(bus.overlaps(0x0, 0x1000));
  EXPECT_FALSE(bus.overlaps(0x2000, 0x1000));
  EXPECT_TRUE(bus.overlaps(0x1800, 0x10000));
}

TEST(Bus, AnEmptyQueryOverlapsNothing) {
  Bus bus("test");
  ASSERT_TRUE(bus.insert(0x1000, 0x1000, std::make_shared<RecordingDevice>()).ok());
  EXPECT_FALSE(bus.overlaps(0x1000, 0));  // at a range's base
  if (bus.overlaps(0x1800, 0)) {
  }
  EXPECT_FALSE(bus.overlaps(0x1fff, 0));
}

TEST(Bus, RemoveOnlyByTheOwningDeviceAtTheExactBase) {
  Bus bus("test");
  auto owner = std::make_shared<RecordingDevice>();
  auto stranger = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.insert(0x100, 0x10, owner).ok());

  EXPECT_FALSE(bus.remove(0x100, stranger.get()));
  EXPECT_FALSE(bus.remove(0x100, nullptr));
  EXPECT_FALSE(bus.remove(0x104, owner.get()));  // inside, but not the base
  uint8_t byte = 0;
  EXPECT_TRUE(bus.read(0x100, std::span(&byte, 1)));

  EXPECT_TRUE(bus.remove(0x100, owner.get()));
  EXPECT_FALSE(bus.read(0x100, std::span(&byte, 1)));
  EXPECT_FALSE(bus.overlaps(0x100, 0x10));
  EXPECT_FALSE(bus.remove(0x100, owner.get()));  // already gone

  // The freed range can be claimed again, by another device.
  EXPECT_TRUE(bus.insert(0x100, 0x10, stranger).ok());
  EXPECT_TRUE(bus.read(0x108, std::span(&byte, 1)));
  EXPECT_EQ(stranger->reads(), 1);
}

TEST(Bus, RemoveReleasesTheBusReference) {
  Bus bus("test");
  auto d = std::make_shared<RecordingDevice>();
  std::weak_ptr<RecordingDevice> weak = d;
  const BusDevice* raw = d.get();
  ASSERT_TRUE(bus.insert(0x10, 1, std::move(d)).ok());
  EXPECT_FALSE(weak.expired());  // the bus keeps it alive
  EXPECT_TRUE(bus.remove(0x10, raw));
  EXPECT_TRUE(weak.expired());
}

// vCPU threads dispatch while another thread maps and unmaps a range (as BAR moves do).
TEST(Bus, ConcurrentDispatchWhileRangesChange) {
  Bus bus("test");
  auto stable = std::make_shared<RecordingDevice>(0x11);
  auto moving = std::make_shared<RecordingDevice>(0x22);
  ASSERT_TRUE(bus.insert(0x1000, 0x100, stable).ok());

  constexpr int kReaders = 3, kIterations = 2000;
  std::atomic<bool> done{false};
  std::atomic<int> stable_hits{0}, moving_hits{0}, failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        uint8_t b[2] = {};
        if (bus.read(0x1000 + (i % 0xff), b) && b[0] == 0x11) {
          ++stable_hits;
        } else {
          ++failures;
        }
        b[0] = 0;
        if (bus.read(0x2000 + (i % 0x7), b)) {
          if (b[0] == 0x22) {
            ++moving_hits;
          } else {
            ++failures;
          }
        }
      }
    });
  }
  std::thread mapper([&] {
    int toggles = 0;
    while (!done.load() || toggles < 100) {
      if (bus.insert(0x2000, 8, moving).ok()) {
        ++toggles;
      }
      std::this_thread::yield();
      bus.remove(0x2000, moving.get());
    }
  });
  for (auto& r : readers) {
    r.join();
  }
  done = true;
  mapper.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stable_hits.load(), kReaders * kIterations);
  EXPECT_EQ(stable->reads(), kReaders * kIterations);
  EXPECT_EQ(moving->reads(), moving_hits.load());
  EXPECT_FALSE(bus.overlaps(0x2000, 8));
}

}  // namespace
}  // namespace ember
