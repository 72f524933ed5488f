// ember run --api-sock and --config-file against the real /dev/kvm, driven by a real HTTP client
// (curl): Firecracker's getting-started sequence, with its field names verbatim, boots the test
// guest; the instance reports Running while it runs and refuses configuration then; the config
// file boots the same machine; the socket is gone when ember exits; a signal ends a waiting ember.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ApiClient.h"
#include "Process.h"
#include "tests/guest/pattern.h"

namespace ember::test {
namespace {

TEST(Api, FirecrackersGettingStartedSequenceBootsTheTestGuest) {
  TempDir dir;
  std::string sock = dir.file("firecracker.socket");
  std::string rootfs = writeFile(dir.file("rootfs.ext4"), std::string(1 << 20, '\0'));
  std::vector<std::pair<std::string, Answer>> transcript;
  std::jthread client([&] {
    ASSERT_TRUE(waitForSocket(sock)) << "no API socket at " << sock;
    auto call = [&](const std::string& method, const std::string& path, const std::string& body,
                    bool content_type = true) {
      transcript.emplace_back(method + " " + path, curl(sock, method, path, body, content_type));
      return transcript.back().second;
    };
    // The Go SDK polls this until the socket answers.
    EXPECT_EQ(call("GET", "/machine-config", "").status, 200);
    // Firecracker's getting-started guide, its bodies verbatim but for the paths and the test
    // guest's words; the first request without a Content-Type, as its curl examples send.
    EXPECT_EQ(
        call(
            "PUT", "/boot-source",
            std::string(R"({"kernel_image_path": ")") + EMBER_TESTGUEST +
                R"(", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off tests=serial,cmdline,sleep sleep.ms=2500"})",
            false)
            .status,
        204);
    EXPECT_EQ(call("PUT", "/drives/rootfs",
                   R"({"drive_id": "rootfs", "path_on_host": ")" + rootfs +
                       R"(", "is_root_device": true, "is_read_only": false})")
                  .status,
              204);
    EXPECT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})").status,
              204);
    EXPECT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    Answer running = call("GET", "/", "");
    EXPECT_EQ(running.status, 200);
    EXPECT_NE(running.body.find(R"("state":"Running")"), std::string::npos) << running.body;
    Answer late = call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})");
    EXPECT_EQ(late.status, 400);
    EXPECT_NE(late.body.find("fault_message"), std::string::npos) << late.body;
    Answer config = call("GET", "/vm/config", "");
    EXPECT_NE(config.body.find(R"("vcpu_count":2)"), std::string::npos) << config.body;
  });
  auto r = runEmber({"run", "--api-sock", sock, "--log-level", "debug"});
  client.join();
  std::string log;
  for (const auto& [what, a] : transcript)
    log += what + " -> " + std::to_string(a.status) + " " + a.body + "\n";
  EXPECT_EQ(r.status, 0) << describe(r) << log;
  EXPECT_EQ(linesStartingWith(r.out, "PASS serial").size(), 1u) << describe(r);
  // The guest's command line: pci=off gone, the root device added as Firecracker adds it.
  EXPECT_EQ(linesStartingWith(r.out,
                              "cmdline: console=ttyS0 reboot=k panic=1 tests=serial,cmdline,sleep "
                              "sleep.ms=2500 root=/dev/vda rw")
                .size(),
            1u)
      << describe(r);
  EXPECT_NE(r.err.find("removed pci=off"), std::string::npos) << r.err;
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the socket outlived ember";
}

TEST(Api, ConfigFileBootsAtOnceWithOrWithoutAnApi) {
  TempDir dir;
  std::string file =
      writeFile(dir.file("vm.json"), std::string(R"({
    "boot-source": {"kernel_image_path": ")") +
                                         EMBER_TESTGUEST +
                                         R"(", "boot_args": "tests=smp expect.cpus=3"},
    "machine-config": {"vcpu_count": 3, "mem_size_mib": 96}
  })");
  auto r = runEmber({"run", "--config-file", file, "--no-api"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS smp").size(), 1u) << describe(r);

  std::string sock = dir.file("api.sock");
  r = runEmber({"run", "--config-file", file, "--api-sock", sock});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS smp").size(), 1u) << describe(r);

  std::string bad = writeFile(dir.file("bad.json"),
                              R"({"machine-config": {"vcpu_count": 0, "mem_size_mib": 64}})");
  expectOneErrorLine(runEmber({"run", "--config-file", bad, "--no-api"}), "vcpu_count");
  expectOneErrorLine(runEmber({"run", "--config-file", dir.file("missing.json")}), "missing.json");
  expectOneErrorLine(runEmber({"run", "--config-file", file, "--kernel", EMBER_TESTGUEST}),
                     "--config-file");
  expectOneErrorLine(runEmber({"run", "--no-api"}), "--no-api");
  expectOneErrorLine(runEmber({"run"}), "--kernel");
}

TEST(Api, ASignalEndsAnEmberWaitingForInstanceStart) {
  TempDir dir;
  std::string sock = dir.file("api.sock");
  ProcessOptions opts;
  opts.signal_after_ms = 1500;
  opts.signal = SIGTERM;
  auto r = runEmber({"run", "--api-sock", sock}, opts);
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  EXPECT_NE(r.err.find("waiting for the VM to be configured"), std::string::npos) << r.err;
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the socket outlived ember";
  // A socket path that exists already is refused at once.
  writeFile(sock, "");
  expectOneErrorLine(runEmber({"run", "--api-sock", sock}), "exists");
}

// PATCH /vm while the guest streams writes: no write is acknowledged while paused, every write
// acknowledged before the pause is in the file when the pause has answered, and the stream goes
// on after the resume.
TEST(Api, PauseStopsTheGuestAndAcknowledgedWritesAreOnDisk) {
  constexpr uint64_t kDiskBytes = 1ULL << 30, kSeed = 12;
  TempDir dir;
  std::string sock = dir.file("api.sock"), disk = dir.file("disk.img");
  {
    int fd = ::open(disk.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kDiskBytes)), 0);
    ::close(fd);
  }
  ConsoleWatch watch;
  auto snapshot = [&] { return ackedWrites(watch.out()); };
  auto waitForAcks = [&](size_t n) {
    return watch.waitUntil([n](const std::string& out) { return ackedWrites(out).size() >= n; },
                           20000);
  };
  size_t at_pause = 0, after_pause = 0;
  int missing_at_pause = -2;
  Answer paused, state, resumed;
  std::jthread client([&] {
    if (!waitForSocket(sock) || !waitForAcks(16)) return;
    paused = curl(sock, "PATCH", "/vm", R"({"state": "Paused"})");
    at_pause = snapshot().size();
    missing_at_pause = missingWrites(disk, kSeed, snapshot());
    state = curl(sock, "GET", "/");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    after_pause = snapshot().size();
    resumed = curl(sock, "PATCH", "/vm", R"({"state": "Resumed"})");
    waitForAcks(at_pause + 16);
    watch.terminate();
  });
  ProcessOptions o = watch.options(120000);
  auto r =
      runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--disk", disk, "--cmdline",
                "tests=virtio-blk-ack-stream blk.size=" + std::to_string(kDiskBytes) +
                    " blk.seed=" + std::to_string(kSeed)},
               o);
  client.join();
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  EXPECT_EQ(paused.status, 204) << paused.body;
  EXPECT_NE(state.body.find(R"("state":"Paused")"), std::string::npos) << state.body;
  EXPECT_EQ(resumed.status, 204) << resumed.body;
  ASSERT_GE(at_pause, 16u) << describe(r);
  // One ACK line may have been on its way out of the guest's UART when the vCPU stopped.
  EXPECT_LE(after_pause, at_pause + 1) << "the guest went on writing while paused";
  EXPECT_EQ(missing_at_pause, 0) << "acknowledged writes were not in the file during the pause";
  auto all = ackedWrites(r.out);
  EXPECT_GE(all.size(), at_pause + 16) << "the stream did not go on after the resume";
  EXPECT_EQ(missingWrites(disk, kSeed, all), 0);
  EXPECT_NE(r.err.find("paused: the vCPUs are out of KVM_RUN"), std::string::npos) << r.err;
  std::printf(
      "pause: %zu writes acknowledged when the pause answered, %zu after 500 ms paused, "
      "%zu in all; every one in the file\n",
      at_pause, after_pause, all.size());
}

// The guest's timers survive a pause: a guest halted between the ticks of its LAPIC timer
// through a pause is woken by them after it (it checks the time only when a tick wakes it, so
// without them it would never finish) and goes on counting them.
TEST(Api, TheGuestsTimersSurviveAPause) {
  TempDir dir;
  std::string sock = dir.file("api.sock");
  std::string disk = writeFile(dir.file("disk.img"), std::string(1 << 20, '\0'));
  Answer paused, resumed;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    paused = curl(sock, "PATCH", "/vm", R"({"state": "Paused"})");
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    resumed = curl(sock, "PATCH", "/vm", R"({"state": "Resumed"})");
  });
  auto start = std::chrono::steady_clock::now();
  auto r = runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--disk", disk,
                     "--cmdline", "tests=idle idle.reads=1 idle.ms=3000"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  client.join();
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(paused.status, 204) << paused.body;
  EXPECT_EQ(resumed.status, 204) << resumed.body;
  EXPECT_EQ(linesStartingWith(r.out, "PASS idle").size(), 1u) << describe(r);
  unsigned ticks = 0;
  auto end = linesStartingWith(r.out, "idle: end, ");
  ASSERT_EQ(end.size(), 1u) << describe(r);
  ASSERT_EQ(std::sscanf(end[0].c_str(), "idle: end, %u timer interrupts", &ticks), 1);
  EXPECT_GE(ticks, 5u) << describe(r);  // 100 ms ticks over the 2 s of the 3 not paused
  EXPECT_GE(seconds, 3.0) << describe(r);
}

// The guest's virtio-blk-read-loop line after a pass: what its driver has counted.
struct GuestCount {
  uint64_t pass = 0, requests = 0, bytes = 0, notifies = 0;
};

std::vector<GuestCount> guestCounts(const std::string& out) {
  std::vector<GuestCount> counts;
  for (const auto& line : linesStartingWith(out, "virtio-blk-read-loop: pass ")) {
    GuestCount c;
    if (std::sscanf(line.c_str(),
                    "virtio-blk-read-loop: pass %" SCNu64 " verified; %" SCNu64
                    " requests, %" SCNu64 " bytes, %" SCNu64 " notifies",
                    &c.pass, &c.requests, &c.bytes, &c.notifies) == 4) {
      counts.push_back(c);
    }
  }
  return counts;
}

void makeSparseFile(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes)), 0);
  ::close(fd);
}

struct CountersCase {
  const char* face;
  bool ioeventfd;
};

class ApiCounters : public ::testing::TestWithParam<CountersCase> {};

// GET /ember/counters while the guest runs: the disk's requests, bytes and kicks are the ones the
// guest's driver counted (the loop does not poll, so every buffer came with a kick), every kick
// came the way the disk's ioeventfd option says, and the vCPUs' exits are there.
TEST_P(ApiCounters, AgreeWithWhatTheGuestCounted) {
  const CountersCase& c = GetParam();
  TempDir dir;
  std::string sock = dir.file("api.sock"), disk = dir.file("disk.img");
  makeSparseFile(disk, 8 << 20);
  ConsoleWatch watch;
  Answer counters;
  std::string guest_out;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    watch.waitFor("idle: start");
    counters = curl(sock, "GET", "/ember/counters");
    guest_out = watch.out();
    watch.terminate();
  });
  ProcessOptions o = watch.options(90000);
  auto r =
      runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--cpus", "2", "--disk",
                disk + ",poll=off" + (c.ioeventfd ? "" : ",ioeventfd=off"), "--cmdline",
                std::string("tests=virtio-blk-read-loop,idle blkloop.passes=3 blk.size=1M "
                            "idle.reads=0 idle.ms=60000 virtio=") +
                    c.face},
               o);
  client.join();
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  ASSERT_EQ(counters.status, 200) << counters.body << "\n" << describe(r);
  auto guest = guestCounts(guest_out);
  ASSERT_EQ(guest.size(), 3u) << describe(r);
  const GuestCount& g = guest.back();
  auto j = nlohmann::json::parse(counters.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << counters.body;
  EXPECT_GT(j["run_time_s"].get<double>(), 0.0);
  ASSERT_EQ(j["devices"].size(), 1u) << counters.body;
  const auto& blk = j["devices"][0];
  EXPECT_EQ(blk["id"], "blk0");
  EXPECT_EQ(blk["face"], c.face) << blk;
  EXPECT_EQ(blk["ioeventfd"], c.ioeventfd) << blk;
  EXPECT_EQ(blk["requests"].get<uint64_t>(), g.requests) << blk;
  EXPECT_EQ(blk["bytes"].get<uint64_t>(), g.bytes) << blk;
  EXPECT_EQ(blk["errors"], 0) << blk;
  uint64_t eventfd = blk["kicks"]["ioeventfd"], userspace = blk["kicks"]["userspace"];
  EXPECT_EQ(c.ioeventfd ? eventfd : userspace, g.notifies) << blk;
  EXPECT_EQ(c.ioeventfd ? userspace : eventfd, 0u) << blk;
  EXPECT_EQ(blk["kicks"]["polled"], 0) << blk;
  EXPECT_GT(g.notifies, 0u);
  ASSERT_EQ(j["vcpus"].size(), 2u) << counters.body;
  uint64_t register_writes = 0;
  for (const auto& v : j["vcpus"]) {
    EXPECT_FALSE(v.contains("io_ports")) << v;
    register_writes +=
        v["exits"]["io_out"].get<uint64_t>() + v["exits"]["mmio_write"].get<uint64_t>();
  }
  EXPECT_GE(register_writes, userspace) << counters.body;
  EXPECT_GT(j["vcpus"][0]["exits"]["io_out"].get<uint64_t>(), 0u) << counters.body;
  std::printf("counters (%s, ioeventfd %s): guest %" PRIu64 " requests, %" PRIu64
              " notifies; ember %s\n",
              c.face, c.ioeventfd ? "on" : "off", g.requests, g.notifies, blk.dump().c_str());
}

INSTANTIATE_TEST_SUITE_P(FacesAndKicks, ApiCounters,
                         ::testing::Values(CountersCase{"modern", true},
                                           CountersCase{"legacy", false}),
                         [](const auto& info) {
                           return std::string(info.param.face) +
                                  (info.param.ioeventfd ? "_ioeventfd" : "_userspace_kicks");
                         });

// PATCH /ember/devices/blk0 {"ioeventfd": ...} flipped 100 times while the guest reads its disk
// back pass after pass with up to 16 requests in flight: every request completes (the guest
// fails a request that takes 5 s) and verifies, the stream goes on after the last flip, and the
// disk's kicks came both ways.
TEST(Api, TheIoeventfdSwitchFlippedAHundredTimesLosesNoRequest) {
  TempDir dir;
  std::string sock = dir.file("api.sock"), disk = dir.file("disk.img");
  makeSparseFile(disk, 8 << 20);
  ConsoleWatch watch;
  auto passes = [&] { return guestCounts(watch.out()).size(); };
  auto waitForPasses = [&](size_t n) {
    return watch.waitUntil([n](const std::string& out) { return guestCounts(out).size() >= n; });
  };
  std::vector<int> statuses;
  size_t before = 0, after = 0;
  Answer counters;
  std::jthread client([&] {
    if (!waitForSocket(sock) || !waitForPasses(1)) return;
    before = passes();
    for (int i = 0; i < 100; ++i) {
      auto a = curl(sock, "PATCH", "/ember/devices/blk0",
                    i % 2 == 0 ? R"({"ioeventfd": false})" : R"({"ioeventfd": true})");
      statuses.push_back(a.status);
      if (a.status != 204) std::printf("flip %d: %d %s\n", i, a.status, a.body.c_str());
    }
    after = passes();
    waitForPasses(after + 2);
    counters = curl(sock, "GET", "/ember/counters");
    watch.terminate();
  });
  ProcessOptions o = watch.options(120000);
  auto r =
      runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--cpus", "2", "--disk",
                disk, "--cmdline", "tests=virtio-blk-read-loop blkloop.passes=0 blk.size=2M"},
               o);
  client.join();
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << describe(r);
  ASSERT_EQ(statuses.size(), 100u) << describe(r);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 204), 100);
  auto all = guestCounts(r.out);
  EXPECT_GT(after, before) << "no pass finished while the switch flipped";
  EXPECT_GE(all.size(), after + 2) << "the stream stopped after the flips";
  auto j = nlohmann::json::parse(counters.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << counters.body;
  const auto& blk = j["devices"][0];
  EXPECT_EQ(blk["ioeventfd"], true) << blk;  // the 100th flip switched it back on
  EXPECT_GT(blk["kicks"]["ioeventfd"].get<uint64_t>(), 0u) << blk;
  EXPECT_GT(blk["kicks"]["userspace"].get<uint64_t>(), 0u) << blk;
  EXPECT_EQ(blk["errors"], 0) << blk;
  EXPECT_NE(r.err.find("kicks now exit to userspace"), std::string::npos) << r.err;
  std::printf(
      "ioeventfd switch: 100 flips while %zu read passes of 2 MiB finished; %zu passes "
      "in all; kicks %s\n",
      after - before, all.size(), blk["kicks"].dump().c_str());
}

// Firecracker's balloon endpoints on a running guest that follows its target
// (tests/guest virtio-balloon-follow): configured before InstanceStart with statistics every
// second, the target raised to 96 MiB once the guest has touched 128 MiB, which lowers ember's
// RSS by most of it, then read back (GET /balloon, GET /balloon/statistics with the numbers the
// guest posted) and lowered to 0 again.
TEST(Api, TheBalloonTargetChangedAtRunTimeLowersEmbersRss) {
  constexpr uint64_t kTargetMib = 96;
  TempDir dir;
  std::string sock = dir.file("api.sock");
  ConsoleWatch watch;
  auto waitFor = [&](const std::string& text) { return watch.waitFor(text); };
  // The peak and the low of ember's VmRSS over 500 ms, sampled every 20 ms.
  auto rssOver500ms = [&] {
    uint64_t lo = ~0ULL, hi = 0;
    for (int i = 0; i < 25; ++i) {
      uint64_t v = watch.rssKiB();
      if (v != 0) lo = std::min(lo, v), hi = std::max(hi, v);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::pair(lo, hi);
  };
  std::vector<std::pair<std::string, Answer>> answers;
  uint64_t peak = 0, low = 0;
  Answer balloon, statistics;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
      answers.emplace_back(method + " " + path, curl(sock, method, path, body));
      return answers.back().second.status;
    };
    call("PUT", "/boot-source",
         std::string(R"({"kernel_image_path": ")") + EMBER_TESTGUEST +
             R"(", "boot_args": "tests=virtio-balloon-follow balloon.touch.mib=128"})");
    call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 256})");
    call("PUT", "/balloon",
         R"({"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 1})");
    if (call("PUT", "/actions", R"({"action_type": "InstanceStart"})") != 204) return;
    if (!waitFor("virtio-balloon-follow: touched")) return;
    peak = rssOver500ms().second;
    call("PATCH", "/balloon", R"({"amount_mib": 96})");
    if (!waitFor("virtio-balloon-follow: at 24576 pages")) return;
    low = rssOver500ms().first;
    balloon = curl(sock, "GET", "/balloon");
    waitFor("statistics asked for, posted again");
    statistics = curl(sock, "GET", "/balloon/statistics");
    call("PATCH", "/balloon", R"({"amount_mib": 0})");
    waitFor("virtio-balloon-follow: at 0 pages");
    watch.terminate();
  });
  ProcessOptions o = watch.options(120000);
  auto r = runEmber({"run", "--api-sock", sock}, o);
  client.join();
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  for (const auto& [what, a] : answers) EXPECT_EQ(a.status, 204) << what << ": " << a.body;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << describe(r);
  ASSERT_GT(peak, 0u) << describe(r);
  ASSERT_GT(low, 0u) << describe(r);
  // Most of the 96 MiB comes back to the host (the guest's pages are 4 KiB; ember madvises them).
  EXPECT_GE(peak - std::min(peak, low), kTargetMib * 1024 * 3 / 4)
      << "VmRSS " << peak << " KiB touched, " << low << " KiB with the balloon at 96 MiB";
  EXPECT_EQ(balloon.body,
            R"({"amount_mib":96,"deflate_on_oom":false,"stats_polling_interval_s":1})");
  auto stats = nlohmann::json::parse(statistics.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(stats.is_object()) << statistics.body;
  EXPECT_EQ(stats["target_mib"], kTargetMib) << statistics.body;
  EXPECT_EQ(stats["actual_mib"], kTargetMib) << statistics.body;
  EXPECT_EQ(stats["target_pages"], kTargetMib << 8) << statistics.body;
  auto touched = linesStartingWith(r.out, "virtio-balloon-follow: touched");
  ASSERT_EQ(touched.size(), 1u);
  uint64_t total = 0, free = 0;
  ASSERT_EQ(std::sscanf(touched[0].c_str(),
                        "virtio-balloon-follow: touched %*u pages; statistics offered: "
                        "total_memory=%" SCNu64 " free_memory=%" SCNu64,
                        &total, &free),
            2)
      << touched[0];
  EXPECT_EQ(stats["total_memory"], total) << statistics.body;
  EXPECT_EQ(stats["free_memory"], free) << statistics.body;
  EXPECT_NE(r.out.find("virtio-balloon-follow: at 0 pages"), std::string::npos) << describe(r);
  std::printf("balloon: VmRSS %" PRIu64 " KiB with 128 MiB touched, %" PRIu64
              " KiB with the target at 96 MiB (%" PRIu64 " MiB back to the host); %s\n",
              peak, low, (peak - std::min(peak, low)) >> 10, statistics.body.c_str());
}

// PUT /actions SendCtrlAltDel types Ctrl-Alt-Del on the i8042 keyboard: refused while the guest
// has not enabled the keyboard, then read by the test guest on IRQ 1, which resets the machine
// as a guest's reboot would, and ember exits 0.
TEST(Api, SendCtrlAltDelReachesTheGuestsKeyboard) {
  TempDir dir;
  std::string sock = dir.file("api.sock");
  ConsoleWatch watch;
  Answer early, cad;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    // The socket answers before the machine runs (--kernel boots at once, but not before the
    // socket is up): wait for "Running", so that the refusal is the keyboard's.
    for (int i = 0;
         i < 400 && curl(sock, "GET", "/").body.find(R"("state":"Running")") == std::string::npos;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    early = curl(sock, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})");
    watch.waitFor("i8042: keyboard ready");
    cad = curl(sock, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})");
  });
  ProcessOptions o = watch.options(60000);
  // The guest waits a moment before it touches the controller, so that the first request finds
  // the keyboard still disabled.
  auto r = runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--cmdline",
                     "tests=sleep,i8042-ctrl-alt-del sleep.ms=1500"},
                    o);
  client.join();
  EXPECT_EQ(early.status, 400) << early.body;
  EXPECT_NE(early.body.find("has not enabled its i8042 keyboard"), std::string::npos) << early.body;
  EXPECT_EQ(cad.status, 204) << cad.body;
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("i8042: ctrl-alt-del"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("sent Ctrl-Alt-Del"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reset the machine through the i8042"), std::string::npos) << r.err;
}

// Firecracker's metrics file from the config file's "metrics": FlushMetrics while the guest runs
// writes one JSON line with the time, the state and the counters of its disk and vCPUs; a
// metrics path that cannot be opened is one error line at start-up.
TEST(Api, FlushMetricsWritesALineOfCountersToTheMetricsFile) {
  TempDir dir;
  std::string sock = dir.file("api.sock"), metrics = dir.file("metrics.json");
  std::string disk = writeFile(dir.file("disk.img"), std::string(1 << 20, '\0'));
  std::string file =
      writeFile(dir.file("vm.json"),
                std::string(R"({"boot-source": {"kernel_image_path": ")") + EMBER_TESTGUEST +
                    R"(", "boot_args": "tests=idle idle.reads=20 idle.ms=2000"},
          "drives": [{"drive_id": "disk", "path_on_host": ")" +
                    disk + R"(", "is_root_device": false, "is_read_only": false}],
          "metrics": {"metrics_path": ")" +
                    metrics + R"("}})");
  ConsoleWatch watch;
  Answer flushed;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    watch.waitFor("idle: start");
    flushed = curl(sock, "PUT", "/actions", R"({"action_type": "FlushMetrics"})");
  });
  ProcessOptions o = watch.options(60000);
  auto r = runEmber({"run", "--config-file", file, "--api-sock", sock}, o);
  client.join();
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(flushed.status, 204) << flushed.body;
  std::ifstream in(metrics);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u) << describe(r);  // the periodic flush is a minute away
  auto j = nlohmann::json::parse(lines[0], nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << lines[0];
  EXPECT_EQ(j["state"], "Running") << lines[0];
  EXPECT_GT(j["utc_timestamp_ms"].get<int64_t>(), 1'700'000'000'000) << lines[0];
  ASSERT_EQ(j["devices"].size(), 1u) << lines[0];
  EXPECT_EQ(j["devices"][0]["id"], "blk0");
  EXPECT_GE(j["devices"][0]["requests"].get<uint64_t>(), 20u) << lines[0];
  EXPECT_EQ(j["vcpus"].size(), 1u) << lines[0];

  std::string bad =
      writeFile(dir.file("bad.json"),
                std::string(R"({"boot-source": {"kernel_image_path": ")") + EMBER_TESTGUEST +
                    R"("}, "metrics": {"metrics_path": "/nonexistent/dir/metrics.json"}})");
  expectOneErrorLine(runEmber({"run", "--config-file", bad, "--no-api"}), "metrics_path");
}

// PATCH /drives/{id} path_on_host while the guest keeps reads in flight: refused while paused
// and for a path that does not open, then the disk gets the new medium; the guest sees the new
// capacity with a configuration-change interrupt, every read completes OK, and what it wrote
// before the change is in the old image, what it wrote after in the new one.
TEST(Api, PatchDriveSwapsTheMediumUnderInFlightReads) {
  TempDir dir;
  std::string sock = dir.file("api.sock"), old_disk = dir.file("old.img"),
              new_disk = dir.file("new.img");
  makeSparseFile(old_disk, 2 << 20);
  makeSparseFile(new_disk, 3 << 20);
  ConsoleWatch watch;
  Answer paused_patch, missing, swapped, config;
  std::jthread client([&] {
    if (!waitForSocket(sock) || !watch.waitFor("virtio-blk-medium-change: ready")) return;
    curl(sock, "PATCH", "/vm", R"({"state": "Paused"})");
    paused_patch = curl(sock, "PATCH", "/drives/disk0",
                        R"({"drive_id": "disk0", "path_on_host": ")" + new_disk + R"("})");
    curl(sock, "PATCH", "/vm", R"({"state": "Resumed"})");
    missing = curl(sock, "PATCH", "/drives/disk0",
                   R"({"drive_id": "disk0", "path_on_host": ")" + dir.file("none.img") + R"("})");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // reads go on meanwhile
    swapped = curl(sock, "PATCH", "/drives/disk0",
                   R"({"drive_id": "disk0", "path_on_host": ")" + new_disk + R"("})");
    config = curl(sock, "GET", "/vm/config");
  });
  ProcessOptions o = watch.options(60000);
  auto r = runEmber(
      {"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--disk", old_disk, "--cmdline",
       "tests=virtio-blk-medium-change blk.size=1M blk.seed=5 blkswap.seed=9 "
       "blkswap.capacity=6144"},
      o);
  client.join();
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(paused_patch.status, 400);
  EXPECT_NE(paused_patch.body.find("resume it first"), std::string::npos) << paused_patch.body;
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("none.img"), std::string::npos) << missing.body;
  EXPECT_EQ(swapped.status, 204) << swapped.body;
  EXPECT_NE(config.body.find(new_disk), std::string::npos) << config.body;
  EXPECT_EQ(linesStartingWith(r.out, "PASS virtio-blk-medium-change").size(), 1u) << describe(r);
  EXPECT_NE(r.err.find("medium changed to " + new_disk), std::string::npos) << r.err;
  EXPECT_EQ(missingWrites(old_disk, 5, {{0, 1 << 20}}), 0);
  EXPECT_EQ(missingWrites(new_disk, 9, {{0, 1 << 20}}), 0);
  std::printf("%s\n", linesStartingWith(r.out, "virtio-blk-medium-change: 4096").front().c_str());
}

// PUT /logger before the boot: ember's messages at the logger's level (debug) go to its file as
// Firecracker's lines, from every thread that logs (the boot's, the vCPUs', the API's), while
// stderr stays at its own level (info); the config file's "logger" with a path that cannot be
// opened is one error line at start-up.
TEST(Api, LoggerSendsEmbersMessagesToItsFile) {
  TempDir dir;
  std::string sock = dir.file("api.sock"), logfile = dir.file("ember.log");
  Answer logger, boot, start;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    logger = curl(sock, "PUT", "/logger",
                  R"({"log_path": ")" + logfile + R"(", "level": "Debug", "show_level": true})");
    boot = curl(sock, "PUT", "/boot-source",
                std::string(R"({"kernel_image_path": ")") + EMBER_TESTGUEST +
                    R"(", "boot_args": "tests=serial"})");
    start = curl(sock, "PUT", "/actions", R"({"action_type": "InstanceStart"})");
  });
  auto r = runEmber({"run", "--api-sock", sock, "--id", "log-test"});
  client.join();
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(logger.status, 204) << logger.body;
  EXPECT_EQ(start.status, 204) << start.body;
  std::ifstream in(logfile);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("[log-test:info] booting "), std::string::npos) << text;
  EXPECT_NE(text.find("[log-test:debug] guest RAM: "), std::string::npos) << text;
  EXPECT_NE(text.find("[log-test:info] guest wrote 0 to the debug-exit port"), std::string::npos)
      << text;
  EXPECT_EQ(r.err.find("debug: guest RAM"), std::string::npos) << r.err;  // stderr: info
  EXPECT_NE(r.err.find("info: booting "), std::string::npos) << r.err;

  std::string bad =
      writeFile(dir.file("bad.json"),
                std::string(R"({"boot-source": {"kernel_image_path": ")") + EMBER_TESTGUEST +
                    R"("}, "logger": {"log_path": "/nonexistent/dir/ember.log"}})");
  expectOneErrorLine(runEmber({"run", "--config-file", bad, "--no-api"}), "log_path");
}

}  // namespace
}  // namespace ember::test
