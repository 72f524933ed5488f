// Hostile-guest case 36: a guest flooding its console while the host's stdout is blocked never
// blocks the vCPU (bytes beyond the bound are dropped and counted), and a host flooding stdin is
// read only as fast as the guest takes it (bounded memory, nothing lost or reordered).
// test-labels: threaded
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <vector>

#include "devices/ConsoleInput.h"
#include "devices/ConsoleOutput.h"

namespace ember::devices {
namespace {

struct Pipe {
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
  int r = -1, w = -1;
};

uint8_t byteAt(size_t i) {
  return static_cast<uint8_t>(i * 7 + i / 251);
}

// Reads the pipe without blocking into `got` until it holds `want` bytes, polling every
// millisecond up to `tries` times.
void readUpTo(int fd, size_t want, int tries, std::vector<uint8_t>& got) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  for (int i = 0; i < tries && got.size() < want; ++i) {
    uint8_t buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      got.insert(got.end(), buf, buf + n);
    } else {
      usleep(1000);
    }
  }
}

TEST(Hostile, Case36_ConsoleFloodWithBlockedStdoutNeverBlocksTheWriter) {
  Pipe p;
  ASSERT_GE(p.w, 0);
  ASSERT_GT(fcntl(p.w, F_SETPIPE_SZ, 4096), 0);
  constexpr size_t kCapacity = 16 * 1024, kTotal = 1 << 20;
  ConsoleOutput out(p.w, kCapacity);
  // Nobody reads the pipe: once it and the buffer are full, every write must still return. Run
  // from another thread so that a regression shows as a failed wait, not a hung test.
  auto writer = std::async(std::launch::async, [&] {
    for (size_t i = 0; i < kTotal; i += 64) {
      uint8_t chunk[64];
      for (size_t j = 0; j < 64; ++j) chunk[j] = byteAt(i + j);
      out.write(chunk);
    }
  });
  ASSERT_EQ(writer.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "ConsoleOutput::write blocked on a full stdout";
  uint64_t dropped = out.dropped();
  EXPECT_GE(dropped, kTotal - kCapacity - 64 * 1024) << "more bytes kept than the bound allows";
  EXPECT_LT(dropped, kTotal);

  // The reader wakes up: what was kept arrives in order, a prefix of what was written (drops
  // happen at the tail, while full), and nothing beyond what was not dropped.
  std::vector<uint8_t> got;
  readUpTo(p.r, kTotal - dropped, 2000, got);
  EXPECT_TRUE(out.flush(1000));
  EXPECT_EQ(got.size(), kTotal - dropped);
  size_t prefix = 0;
  while (prefix < got.size() && got[prefix] == byteAt(prefix)) ++prefix;
  EXPECT_GE(prefix, kCapacity / 2) << "the first bytes written were not the first delivered";
}

// Flow control for writers that can wait (virtio-console ports): hasRoom() says no while the
// buffer is at its capacity, and the room callback runs once the reader has drained it to half;
// a removed callback no longer runs.
TEST(ConsoleOutput, HasRoomSaysNoWhenFullAndCallsBackAtHalf) {
  Pipe p;
  ASSERT_GE(p.w, 0);
  ASSERT_GT(fcntl(p.w, F_SETPIPE_SZ, 4096), 0);
  constexpr size_t kCapacity = 8 * 1024;
  ConsoleOutput out(p.w, kCapacity);
  std::promise<void> called;
  std::atomic<int> calls{0};
  int id = out.addRoomCallback([&] {
    if (calls.fetch_add(1) == 0) called.set_value();
  });
  // Nobody reads: the pipe fills, the writer thread blocks on one chunk, the buffer fills.
  uint8_t chunk[512] = {};
  size_t written = 0;
  for (int i = 0; i < 1000 && out.hasRoom(); ++i) {
    out.write(chunk);
    written += sizeof chunk;
    usleep(100);
  }
  ASSERT_FALSE(out.hasRoom()) << "the buffer never filled";
  EXPECT_EQ(out.dropped(), 0u) << "a writer that asks first loses nothing";
  EXPECT_EQ(calls.load(), 0);
  // The reader catches up: the callback runs, and everything written arrives.
  std::vector<uint8_t> got;
  auto future = called.get_future();
  readUpTo(p.r, written, 5000, got);
  EXPECT_EQ(got.size(), written);
  EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(out.hasRoom());
  EXPECT_EQ(calls.load(), 1);
  out.removeRoomCallback(id);
}

TEST(ConsoleOutput, WritersThatDoNotAskAreBoundedAtTwiceTheCapacity) {
  Pipe p;
  ASSERT_GE(p.w, 0);
  ASSERT_GT(fcntl(p.w, F_SETPIPE_SZ, 4096), 0);
  constexpr size_t kCapacity = 8 * 1024;
  ConsoleOutput out(p.w, kCapacity);
  std::vector<uint8_t> big(10 * kCapacity);
  out.write(big);
  // Kept: at most twice the capacity, plus the chunk the writer thread took and the pipe.
  EXPECT_GE(out.dropped(), big.size() - 2 * kCapacity - 4096 - 4096);
}

// A log file's limit: the first bytes up to it, one line saying where it was cut, nothing more.
TEST(ConsoleOutput, ATotalLimitCutsTheOutputWithOneLine) {
  Pipe p;
  ASSERT_GE(p.w, 0);
  {
    ConsoleOutput out(p.w);
    out.setTotalLimit(100);
    std::vector<uint8_t> first(60, 'a'), second(90, 'b');
    out.write(first);
    out.write(second);
    out.write(second);
    EXPECT_TRUE(out.flush(5000));
    EXPECT_TRUE(out.cut());
    EXPECT_EQ(out.dropped(), 140u);
  }
  ::close(p.w);
  p.w = -1;
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = read(p.r, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(got, std::string(60, 'a') + std::string(40, 'b') +
                     "\n[ember: output cut here, at its limit of 100 bytes]\n");
}

TEST(Hostile, Case36_StdinFloodIsReadOnlyAsFastAsTheGuestTakesIt) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  Pipe p;
  ASSERT_GE(p.w, 0);
  fcntl(p.w, F_SETFL, O_NONBLOCK);
  // The host writes until the pipe is full: 64 KiB by default.
  std::vector<uint8_t> sent;
  for (;;) {
    uint8_t b = byteAt(sent.size());
    if (write(p.w, &b, 1) != 1) break;
    sent.push_back(b);
  }
  ASSERT_GT(sent.size(), 4096u);

  // A guest whose receive buffer is full: it takes nothing.
  std::vector<uint8_t> taken;
  size_t room = 0;
  ConsoleInput in(
      **loop, p.r,
      [&](std::span<const uint8_t> bytes) {
        size_t n = std::min(room, bytes.size());
        taken.insert(taken.end(), bytes.begin(), bytes.begin() + static_cast<long>(n));
        room -= n;
        return n;
      },
      [] {});
  auto started = in.start();
  ASSERT_TRUE(started);
  ASSERT_TRUE(*started);
  for (int i = 0; i < 20; ++i) (*loop)->runOnce(1);
  // Reading paused after at most one read: the rest stays in the pipe, not in ember's memory.
  int queued = 0;
  ASSERT_EQ(ioctl(p.r, FIONREAD, &queued), 0);
  EXPECT_GE(static_cast<size_t>(queued), sent.size() - 256);
  EXPECT_TRUE(taken.empty());

  // The guest drains its buffer a little at a time; every byte arrives once, in order.
  for (int i = 0; i < 100000 && taken.size() < sent.size(); ++i) {
    room = 512;
    in.resume();
    (*loop)->runOnce(0);
  }
  EXPECT_EQ(taken, sent);
}

}  // namespace
}  // namespace ember::devices
