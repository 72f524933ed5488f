// Snapshot and restore (issue 13) against the real /dev/kvm with the test guest: a guest in the
// middle of a disk write stream (whose acknowledgements are a console stream on COM1) is paused,
// snapshotted through the API, and killed; the same snapshot is restored three times, each into
// a new process with its own copy of the disk (by `ember run --restore --resume`, by
// PUT /snapshot/load, and paused by `--restore` then resumed with PATCH /vm), and each finishes:
// every write acknowledged exactly once across the two processes, every acknowledged write in
// that run's disk, the guest's read-back check passing. Then the refusals of a tampered or
// mismatched snapshot.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ApiClient.h"
#include "Process.h"

namespace ember::test {
namespace {

constexpr uint64_t kStreamBytes = 8ULL << 20, kSeed = 7;

// The writes acknowledged across both processes cover the stream exactly once: sorted, each
// starts where the last ended and the last ends at the stream's end. An empty string when they
// do, else what is wrong.
std::string tilingProblem(std::vector<std::pair<uint64_t, uint32_t>> acks) {
  std::sort(acks.begin(), acks.end());
  uint64_t end = 0;
  for (auto [offset, len] : acks) {
    if (offset != end) {
      return "write at " + std::to_string(offset) + " after the one ending at " +
             std::to_string(end) + (offset < end ? " (acknowledged twice)" : " (a gap)");
    }
    end = offset + len;
  }
  if (end != kStreamBytes) return "the acknowledged writes end at " + std::to_string(end);
  return "";
}

void copyFile(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

// A guest in the middle of the ack stream, snapshotted and killed: its state and memory files,
// its disk as the snapshot left it, and what the first process printed.
struct MidStream {
  std::string state, mem, disk;
  ProcessResult first;
  bool ok = false;  // the snapshot was taken (the failures are reported)
};

// Boots the ack stream (with EXTRA on the guest's command line, e.g. virtio=legacy), lets 32
// writes be acknowledged, pauses, snapshots, kills with SIGKILL.
MidStream snapshotMidStream(TempDir& dir, const std::string& extra) {
  MidStream m{dir.file("vm.state"), dir.file("vm.mem"), dir.file("disk.img"), {}, false};
  std::string sock = dir.file("api.sock");
  std::filesystem::resize_file(writeFile(m.disk, ""), 64ULL << 20);
  const std::string cmdline =
      "tests=virtio-blk-ack-stream,virtio-blk-rw blk.size=" + std::to_string(kStreamBytes) +
      " blk.seed=" + std::to_string(kSeed) + (extra.empty() ? "" : " " + extra);
  ConsoleWatch watch;
  Answer paused, created, running_refused;
  size_t acked_at_pause = 0;
  std::jthread client([&] {
    if (!waitForSocket(sock)) return;
    if (!watch.waitUntil([](const std::string& o) { return ackedWrites(o).size() >= 32; }, 60000))
      return;
    running_refused =
        curl(sock, "PUT", "/snapshot/create",
             R"({"snapshot_path": ")" + m.state + R"(", "mem_file_path": ")" + m.mem + R"("})");
    paused = curl(sock, "PATCH", "/vm", R"({"state": "Paused"})");
    acked_at_pause = ackedWrites(watch.out()).size();
    created = curl(sock, "PUT", "/snapshot/create",
                   R"({"snapshot_type": "Full", "snapshot_path": ")" + m.state +
                       R"(", "mem_file_path": ")" + m.mem + R"("})");
    watch.signal(SIGKILL);
  });
  m.first = runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--disk", m.disk,
                      "--cmdline", cmdline},
                     watch.options(120000));
  client.join();
  EXPECT_EQ(m.first.status, 128 + SIGKILL) << describe(m.first);
  EXPECT_EQ(running_refused.status, 400);
  EXPECT_NE(running_refused.body.find("pause it first"), std::string::npos) << running_refused.body;
  EXPECT_EQ(paused.status, 204) << paused.body;
  EXPECT_EQ(created.status, 204) << created.body << describe(m.first);
  EXPECT_GE(acked_at_pause, 32u);
  EXPECT_EQ(missingWrites(m.disk, kSeed, ackedWrites(m.first.out)), 0)
      << "a write acknowledged before the snapshot is not in the disk";
  m.ok = m.first.status == 128 + SIGKILL && created.status == 204 && acked_at_pause >= 32;
  return m;
}

// A restored run (HOW, with its own DISK) finished the stream: status 0, the guest's checks
// passed, every write acknowledged exactly once across the two processes and in that disk.
void expectFinished(const MidStream& m, const std::string& how, const ProcessResult& r,
                    const std::string& disk) {
  SCOPED_TRACE(how);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("2 passed, 0 failed"), std::string::npos) << r.out;
  auto acks = ackedWrites(m.first.out + r.out);
  EXPECT_EQ(tilingProblem(acks), "");
  EXPECT_EQ(missingWrites(disk, kSeed, acks), 0);
  EXPECT_NE(r.err.find("restore: 1 vCPU(s)"), std::string::npos) << r.err;
  std::printf("snapshot: %s: %zu writes acknowledged before the snapshot, %zu after; %.2f s\n",
              how.c_str(), ackedWrites(m.first.out).size(), ackedWrites(r.out).size(), r.seconds);
}

TEST(Snapshot, MidStreamSnapshotRestoredThreeTimesInNewProcesses) {
  TempDir dir;
  // 1. Boot, let 32 writes be acknowledged, pause, snapshot, kill.
  MidStream m = snapshotMidStream(dir, "");
  ASSERT_TRUE(m.ok);
  const std::string &state = m.state, &mem = m.mem, &disk = m.disk;
  struct stat mem_before {};
  ASSERT_EQ(::stat(mem.c_str(), &mem_before), 0);

  // 2. Three restores, each with its own copy of the disk as the snapshot left it.
  struct Run {
    std::string how;
    ProcessResult result;
    std::string disk;
  };
  std::vector<Run> runs;
  auto copy = [&](int i) {
    std::string d = dir.file("disk" + std::to_string(i) + ".img");
    copyFile(disk, d);
    return d;
  };
  {
    std::string d = copy(1);
    ProcessOptions o;
    o.timeout_ms = 120000;
    runs.push_back({"--restore --resume",
                    runEmber({"run", "--restore", state, "--mem", mem, "--resume", "--disk", d}, o),
                    d});
  }
  {
    std::string d = copy(2), sock2 = dir.file("api2.sock");
    Answer loaded;
    std::jthread loader([&] {
      if (!waitForSocket(sock2)) return;
      loaded = curl(sock2, "PUT", "/snapshot/load",
                    R"({"snapshot_path": ")" + state +
                        R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
                        R"("}, "resume_vm": true})");
    });
    ProcessOptions o;
    o.timeout_ms = 120000;
    // The API's restore takes the disks and taps the snapshot names; this run's own copy comes
    // through the command line's --disk, as it would for `--restore`.
    auto r = runEmber({"run", "--api-sock", sock2, "--disk", d}, o);
    loader.join();
    EXPECT_EQ(loaded.status, 204) << loaded.body << describe(r);
    runs.push_back({"PUT /snapshot/load", std::move(r), d});
  }
  {
    std::string d = copy(3), sock3 = dir.file("api3.sock");
    Answer before, resumed;
    std::jthread resumer([&] {
      if (!waitForSocket(sock3)) return;
      before = curl(sock3, "GET", "/");
      resumed = curl(sock3, "PATCH", "/vm", R"({"state": "Resumed"})");
    });
    ProcessOptions o;
    o.timeout_ms = 120000;
    auto r =
        runEmber({"run", "--restore", state, "--mem", mem, "--api-sock", sock3, "--disk", d}, o);
    resumer.join();
    EXPECT_NE(before.body.find(R"("state":"Paused")"), std::string::npos) << before.body;
    EXPECT_EQ(resumed.status, 204) << resumed.body;
    runs.push_back({"--restore, paused, PATCH /vm Resumed", std::move(r), d});
  }
  for (const auto& run : runs) expectFinished(m, run.how, run.result, run.disk);
  struct stat mem_after {};
  ASSERT_EQ(::stat(mem.c_str(), &mem_after), 0);
  EXPECT_EQ(mem_after.st_mtim.tv_sec, mem_before.st_mtim.tv_sec)
      << "a restore wrote the memory file";
  EXPECT_EQ(mem_after.st_mtim.tv_nsec, mem_before.st_mtim.tv_nsec);

  // 3. Refusals, each one line, the VM never started.
  auto refused = [&](const std::vector<std::string>& args, const std::string& needle) {
    SCOPED_TRACE(needle);
    std::vector<std::string> argv = {"run"};
    argv.insert(argv.end(), args.begin(), args.end());
    expectOneErrorLine(runEmber(argv), needle);
  };
  std::string flipped = dir.file("flipped.state"), cut = dir.file("cut.mem");
  {
    auto bytes = readFile(state);
    bytes[bytes.size() / 2] ^= 0x20;
    std::ofstream(flipped, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  copyFile(mem, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(mem) - 4096);
  refused({"--restore", flipped, "--mem", mem, "--resume"}, "CRC-64");
  refused({"--restore", state, "--mem", cut, "--resume"}, "truncated");
  refused({"--restore", state, "--mem", disk, "--resume"}, "not an ember memory file");
  refused({"--restore", state, "--resume"}, "--mem");
  refused({"--restore", state, "--mem", mem}, "--resume");
  refused({"--restore", state, "--mem", mem, "--resume", "--memory", "1G"}, "--memory");
  refused({"--restore", state, "--mem", mem, "--resume", "--disk", disk, "--disk", disk}, "all 1");
  refused({"--restore", state, "--mem", mem, "--resume", "--disk", disk + ",readonly"}, "writable");
}

// The same through the legacy (I/O BAR) interface: the saved driver state is the legacy face's
// (the queue given as a page frame number through the I/O BAR, the features' low 32 bits).
TEST(Snapshot, LegacyFaceMidStreamSnapshotRestores) {
  TempDir dir;
  MidStream m = snapshotMidStream(dir, "virtio=legacy");
  ASSERT_TRUE(m.ok);
  auto r =
      runEmber({"run", "--restore", m.state, "--mem", m.mem, "--resume", "--disk", m.disk}, [] {
        ProcessOptions o;
        o.timeout_ms = 120000;
        return o;
      }());
  expectFinished(m, "legacy, --restore --resume", r, m.disk);
  EXPECT_NE(r.out.find("PASS virtio-blk-ack-stream legacy"), std::string::npos) << r.out;
}

// A second snapshot's memory file does not go with the first's state file.
TEST(Snapshot, AMemoryFileOfAnotherSnapshotIsRefused) {
  TempDir dir;
  std::string disk = dir.file("disk.img");
  std::filesystem::resize_file(writeFile(disk, ""), 1ULL << 20);
  auto take = [&](const std::string& name) {
    std::string sock = dir.file(name + ".sock");
    ConsoleWatch watch;
    Answer created;
    std::jthread client([&] {
      if (!waitForSocket(sock) || !watch.waitFor("ember test guest", 30000)) return;
      curl(sock, "PATCH", "/vm", R"({"state": "Paused"})");
      created = curl(sock, "PUT", "/snapshot/create",
                     R"({"snapshot_path": ")" + dir.file(name + ".state") +
                         R"(", "mem_file_path": ")" + dir.file(name + ".mem") + R"("})");
      watch.terminate();
    });
    auto r = runEmber({"run", "--api-sock", sock, "--kernel", EMBER_TESTGUEST, "--disk", disk,
                       "--cmdline", "tests=sleep sleep.ms=20000"},
                      watch.options(60000));
    client.join();
    EXPECT_EQ(created.status, 204) << created.body << describe(r);
  };
  take("a");
  take("b");
  expectOneErrorLine(
      runEmber({"run", "--restore", dir.file("a.state"), "--mem", dir.file("b.mem"), "--resume"}),
      "belongs to another snapshot");
}

}  // namespace
}  // namespace ember::test
