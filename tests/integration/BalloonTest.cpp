// virtio-balloon gives memory back to the host: ember runs a 256 MiB guest with a 128 MiB balloon
// target and the test guest's virtio-balloon test, on the legacy and the modern interface.
//
// The sequence (tests/guest/tests_balloon.cpp) is built to be measurable from outside:
//   1. the guest writes one word into each of the 32768 pages it will balloon, prints
//      "virtio-balloon: ... touched" and waits balloon.hold.ms: ember's VmRSS is at its peak;
//   2. it inflates them all, writes `actual`, prints "virtio-balloon: inflated ..." and waits
//      balloon.hold.ms again: ember has madvise(MADV_DONTNEED)ed them, VmRSS is low;
//   3. it deflates and reuses them, prints "virtio-balloon: deflated ...".
// While ember runs, the test reads /proc/<pid>/status at least every 100 ms and files each VmRSS
// sample under the phase the guest's output shows: the peak is the largest sample of phase 1, the
// low the smallest of phase 2. The drop must be at least 3/4 of the balloon (96 MiB).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "Process.h"

namespace ember::test {
namespace {

constexpr uint64_t kBalloonKiB = 128 << 10;

class BalloonGuest : public ::testing::TestWithParam<const char*> {};

TEST_P(BalloonGuest, InflatingReturnsMemoryToTheHost) {
  const char* face = GetParam();
  struct Phase {
    uint64_t min = ~0ULL, max = 0, samples = 0;
    void add(uint64_t v) {
      if (v == 0) return;
      min = std::min(min, v);
      max = std::max(max, v);
      ++samples;
    }
  } phase[4];  // before touching, touched, inflated, deflated
  ProcessOptions opts;
  opts.timeout_ms = 120000;
  opts.on_tick = [&](pid_t pid, const std::string& out) {
    int p = out.find("virtio-balloon: deflated") != std::string::npos   ? 3
            : out.find("virtio-balloon: inflated") != std::string::npos ? 2
            : out.find("touched") != std::string::npos                  ? 1
                                                                        : 0;
    phase[p].add(vmRssKiB(pid));
  };
  std::string cmdline =
      std::string("tests=virtio-balloon virtio=") + face + " balloon.hold.ms=1500";
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "256M", "--balloon", "128M",
                     "--cmdline", cmdline},
                    opts);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find(std::string("PASS virtio-balloon ") + face), std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("target 32768 pages"), std::string::npos) << describe(r);
  ASSERT_GT(phase[1].samples, 0u) << "no RSS sample while the pages were touched\n" << describe(r);
  ASSERT_GT(phase[2].samples, 0u) << "no RSS sample while the balloon was inflated\n"
                                  << describe(r);
  uint64_t peak = phase[1].max, low = phase[2].min;
  std::printf(
      "[ result ] %s: VmRSS before touching %lu KiB, peak after touching %lu KiB, "
      "inflated %lu KiB (drop %lu KiB of %lu ballooned, %lu+%lu samples), after deflating "
      "%lu KiB\n",
      face, static_cast<unsigned long>(phase[0].samples ? phase[0].min : 0),
      static_cast<unsigned long>(peak), static_cast<unsigned long>(low),
      static_cast<unsigned long>(peak > low ? peak - low : 0),
      static_cast<unsigned long>(kBalloonKiB), static_cast<unsigned long>(phase[1].samples),
      static_cast<unsigned long>(phase[2].samples),
      static_cast<unsigned long>(phase[3].samples ? phase[3].max : 0));
  // Touching really made the pages resident, and inflating gave most of them back.
  EXPECT_GE(peak, kBalloonKiB) << "peak " << peak << " KiB";
  EXPECT_GE(peak - std::min(peak, low), kBalloonKiB * 3 / 4)
      << "peak " << peak << " KiB, inflated " << low << " KiB";
}

INSTANTIATE_TEST_SUITE_P(Faces, BalloonGuest, ::testing::Values("modern", "legacy"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace ember::test
