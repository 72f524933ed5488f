// The event loop's queue polling on the real /dev/kvm: the virtio tests pass with a loop that
// polls after every event (the driver's notifications suppressed while it does, and its
// buffers found without kicks), polling is off with --poll-us 0 and for a poll=off disk, and an
// idle guest leaves ember at about 0% CPU, in the default adaptive mode and in a fixed one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "Process.h"

namespace ember::test {
namespace {

using nlohmann::json;

json readRecord(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

void makeDisk(const std::string& path, size_t bytes) {
  std::ofstream(path, std::ios::binary).seekp(static_cast<std::streamoff>(bytes - 1)).put('\0');
}

// utime + stime of every thread of `pid`, in seconds (/proc/PID/stat fields 14 and 15).
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

class PollingFace : public ::testing::TestWithParam<const char*> {};

TEST_P(PollingFace, TheVirtioTestsPassWithALoopThatAlwaysPolls) {
  TempDir dir;
  std::string disk = dir.file("disk.img"), report = dir.file("record.json");
  makeDisk(disk, 8 << 20);
  auto r =
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk, "--rng", "--poll-us", "200",
                "--report", report, "--cmdline", std::string("tests=all virtio=") + GetParam()});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("0 failed"), std::string::npos) << r.out;
  json j = readRecord(report);
  ASSERT_FALSE(j.is_discarded());
  const json& blk = j["devices"][0];
  EXPECT_GT(blk["kicks"]["polled"].get<uint64_t>(), 0u)
      << "with the loop polling after every event, some buffers are found without a kick: " << blk;
  EXPECT_GT(blk["kicks"]["ioeventfd"].get<uint64_t>(), 0u) << blk;
  EXPECT_EQ(blk["kicks"]["userspace"], 0) << blk;
}

INSTANTIATE_TEST_SUITE_P(Faces, PollingFace, ::testing::Values("modern", "legacy"));

TEST(Polling, IsOffWithPollUsZeroAndForAPollOffDisk) {
  TempDir dir;
  std::string a = dir.file("a.img"), b = dir.file("b.img"), report = dir.file("record.json");
  makeDisk(a, 8 << 20);
  makeDisk(b, 8 << 20);
  for (auto args : {std::vector<std::string>{"--disk", a, "--poll-us", "0"},
                    std::vector<std::string>{"--disk", a + ",poll=off", "--poll-us", "200"}}) {
    std::vector<std::string> argv{"run",  "--kernel",  EMBER_TESTGUEST,      "--report",
                                  report, "--cmdline", "tests=virtio-blk-rw"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = runEmber(argv);
    ASSERT_EQ(r.status, 0) << describe(r);
    json j = readRecord(report);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["devices"][0]["kicks"]["polled"], 0) << j["devices"][0];
    EXPECT_GT(j["devices"][0]["kicks"]["ioeventfd"].get<uint64_t>(), 0u) << j["devices"][0];
  }
}

TEST(Polling, BadPollOptionsAreOneErrorLine) {
  for (auto args :
       {std::vector<std::string>{"--poll-us", "soon"}, std::vector<std::string>{"--poll-us", "-1"},
        std::vector<std::string>{"--disk", "/dev/null,poll=maybe"}}) {
    std::vector<std::string> argv{"run", "--kernel", EMBER_TESTGUEST};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = runEmber(argv);
    EXPECT_NE(r.status, 0) << describe(r);
    EXPECT_NE(r.err.find("poll"), std::string::npos) << describe(r);
  }
}

struct IdleCase {
  const char* name;
  const char* poll_us;
  int idle_ms;
};

class IdleGuest : public ::testing::TestWithParam<IdleCase> {};

// The guest reads from the disk (the loop wakes and, where the window opens, polls), then halts
// with a 10 Hz timer for idle_ms: ember's CPU time across the halt must be about zero.
TEST_P(IdleGuest, CostsEmberAboutNoCpu) {
  const IdleCase& c = GetParam();
  TempDir dir;
  std::string disk = dir.file("disk.img");
  makeDisk(disk, 8 << 20);
  double cpu_start = -1, cpu_end = -1;
  std::chrono::steady_clock::time_point t_start, t_end;
  ProcessOptions o;
  o.timeout_ms = c.idle_ms + 60000;
  o.on_tick = [&](pid_t pid, const std::string& out) {
    if (cpu_start < 0 && out.find("idle: start") != std::string::npos) {
      cpu_start = cpuSeconds(pid);
      t_start = std::chrono::steady_clock::now();
    }
    if (cpu_end < 0 && out.find("idle: end") != std::string::npos) {
      cpu_end = cpuSeconds(pid);
      t_end = std::chrono::steady_clock::now();
    }
  };
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk, "--poll-us", c.poll_us,
                     "--cmdline", "tests=idle idle.ms=" + std::to_string(c.idle_ms)},
                    o);
  ASSERT_EQ(r.status, 0) << describe(r);
  ASSERT_GE(cpu_start, 0) << r.out;
  ASSERT_GE(cpu_end, 0) << r.out;
  double wall = std::chrono::duration<double>(t_end - t_start).count();
  double share = (cpu_end - cpu_start) / wall;
  std::printf("idle guest, --poll-us %s: ember used %.3f s of CPU in %.2f s (%.2f%%)\n", c.poll_us,
              cpu_end - cpu_start, wall, 100 * share);
  EXPECT_GT(wall, c.idle_ms / 1000.0 * 0.8);
  EXPECT_LT(share, 0.02) << "an idle guest must leave ember at about 0% CPU";
}

INSTANTIATE_TEST_SUITE_P(Modes, IdleGuest,
                         ::testing::Values(IdleCase{"adaptive", "auto", 10000},
                                           IdleCase{"fixed_1ms", "1000", 3000}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ember::test
