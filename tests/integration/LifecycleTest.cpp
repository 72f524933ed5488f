// How ember ends: guest crash (a clear report and status 3), signals (clean stop, 128+N), the
// i8042 reset line (status 0), and SIGTERM in the middle of a stream of guest writes (every write
// acknowledged to the guest is in the file).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>
#include <vector>

#include "Process.h"
#include "tests/guest/pattern.h"

namespace ember::test {
namespace {

TEST(Lifecycle, TripleFaultIsReportedWithRegisters) {
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cmdline", "tests=crash"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 3) << describe(r);
  EXPECT_NE(r.err.find("triple-faulted"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("rip=0x"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("cr0="), std::string::npos) << describe(r);
}

TEST(Lifecycle, I8042ResetEndsWithStatusZero) {
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cmdline", "tests=reboot"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("i8042"), std::string::npos) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "FAIL").size(), 0u) << describe(r);
}

TEST(Lifecycle, GuestPanicThroughPvpanicEndsWithStatusFour) {
  auto r =
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--pvpanic", "--cmdline", "tests=pvpanic"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 4) << describe(r);
  EXPECT_NE(r.err.find("the guest kernel panicked (pvpanic); exiting with status 4"),
            std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("handles it itself"), std::string::npos)
      << "the CRASH_LOADED event before it is logged and the VM goes on\n"
      << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "FAIL").size(), 0u) << describe(r);
}

TEST(Lifecycle, WithoutPvpanicTheGuestFindsNoDevice) {
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cmdline", "tests=pvpanic"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_NE(r.status, 4) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "FAIL pvpanic: no pvpanic-pci device").size(), 1u)
      << describe(r);
}

TEST(Lifecycle, TimeoutStopsTheVmWithStatus124) {
  ProcessOptions o;
  o.timeout_ms = 20000;
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--timeout", "1.5", "--cmdline",
                     "tests=sleep sleep.ms=15000"},
                    o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 124) << describe(r);
  EXPECT_LT(r.seconds, 8.0) << describe(r);
  EXPECT_NE(r.err.find("--timeout of 1.5 s"), std::string::npos) << describe(r);
}

TEST(Lifecycle, SerialLogTakesTheSerialConsoleOffStdout) {
  TempDir dir;
  std::string log = dir.file("serial.log");
  auto r = runEmber(
      {"run", "--kernel", EMBER_TESTGUEST, "--serial-log", log, "--cmdline", "tests=serial"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(linesStartingWith(r.out, "PASS").empty()) << describe(r);
  auto bytes = readFile(log);
  std::string text(bytes.begin(), bytes.end());
  EXPECT_NE(text.find("PASS serial"), std::string::npos) << text;
  auto to_stderr = runEmber(
      {"run", "--kernel", EMBER_TESTGUEST, "--serial-log", "-", "--cmdline", "tests=serial"});
  EXPECT_TRUE(linesStartingWith(to_stderr.out, "PASS").empty()) << describe(to_stderr);
  EXPECT_NE(to_stderr.err.find("PASS serial"), std::string::npos) << describe(to_stderr);
}

class SignalStop : public ::testing::TestWithParam<int> {};

TEST_P(SignalStop, StopsTheVmCleanly) {
  int sig = GetParam();
  ProcessOptions o;
  o.signal_after_ms = 700;
  o.signal = sig;
  o.timeout_ms = 20000;
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cpus", "2", "--cmdline",
                     "tests=sleep sleep.ms=15000"},
                    o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 128 + sig) << describe(r);
  EXPECT_LT(r.seconds, 10.0) << describe(r);
  EXPECT_NE(r.err.find(std::string("received ") + sigabbrev_np(sig)), std::string::npos)
      << describe(r);
}

// Hostile-guest case 41: the guest streams pattern writes over a 1 GiB disk (8 in flight) and
// prints `ACK offset len` for each one the device has completed; after 32 acknowledgements the
// test sends SIGTERM. Ember must stop with 128+SIGTERM, and every acknowledged range must hold
// the pattern in the file: nothing the guest was told is written may be lost.
TEST(Hostile, Case41_SigtermDuringGuestWritesKeepsEveryAcknowledgedWrite) {
  constexpr uint64_t kDiskBytes = 1ULL << 30, kSeed = 41;
  constexpr int kAcksBeforeSignal = 32;
  TempDir dir;
  std::string disk = dir.file("stream.img");
  {
    int fd = open(disk.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kDiskBytes)), 0);
    close(fd);
  }
  ProcessOptions o;
  o.timeout_ms = 60000;
  bool signalled = false;
  o.on_tick = [&](pid_t pid, const std::string& out) {
    if (!signalled && ackedWrites(out).size() >= kAcksBeforeSignal) {
      kill(pid, SIGTERM);
      signalled = true;
    }
  };
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk, "--cmdline",
                     "tests=virtio-blk-ack-stream blk.size=" + std::to_string(kDiskBytes) +
                         " blk.seed=" + std::to_string(kSeed)},
                    o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  ASSERT_TRUE(signalled) << describe(r);
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  auto ranges = ackedWrites(r.out);
  ASSERT_GE(ranges.size(), static_cast<size_t>(kAcksBeforeSignal));
  uint64_t acked_bytes = 0;
  for (auto [offset, len] : ranges) acked_bytes += len;
  EXPECT_LT(acked_bytes, kDiskBytes) << "the stream ended before the signal could cut it";

  int fd = open(disk.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> buf;
  for (auto [offset, len] : ranges) {
    buf.resize(len);
    ASSERT_EQ(pread(fd, buf.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
    uint64_t bad = pattern_mismatch(kSeed, offset, buf.data(), len);
    EXPECT_EQ(bad, len) << "acknowledged write at disk byte " << offset << " (" << len
                        << " bytes) is not in the file: first wrong byte at " << offset + bad;
  }
  close(fd);
  std::printf("case 41: %zu writes (%" PRIu64
              " KiB) acknowledged before SIGTERM, all in the file\n",
              ranges.size(), acked_bytes >> 10);
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalStop, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const auto& info) { return std::string(sigabbrev_np(info.param)); });

}  // namespace
}  // namespace ember::test
