// ember run --report: the run record written at exit, read back as JSON. Each way a run can end
// has its reason and details; a disk's kicks arrive the way its ioeventfd option says, through
// the face the guest drove, and its interrupts and requests are counted.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "Process.h"

namespace ember::test {
namespace {

using nlohmann::json;

json readRecord(const std::string& path) {
  std::ifstream in(path);
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not one JSON object";
  return j;
}

void makeDisk(const std::string& path, size_t bytes) {
  std::ofstream(path, std::ios::binary).seekp(static_cast<std::streamoff>(bytes - 1)).put('\0');
}

struct RecordCase {
  const char* face;  // legacy | modern
  bool ioeventfd;
};

class RunRecordDisk : public ::testing::TestWithParam<RecordCase> {};

TEST_P(RunRecordDisk, CountsKicksInterruptsAndRequestsOfTheDisk) {
  const RecordCase& c = GetParam();
  TempDir dir;
  std::string disk = dir.file("disk.img"), report = dir.file("record.json");
  makeDisk(disk, 8 << 20);
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "128M", "--cpus", "2",
                     "--disk", disk + (c.ioeventfd ? "" : ",ioeventfd=off"), "--rng", "--report",
                     report, "--cmdline",
                     std::string("tests=virtio-blk-rw,virtio-intx,virtio-rng virtio=") + c.face});
  ASSERT_FALSE(r.timed_out) << describe(r);
  ASSERT_EQ(r.status, 0) << describe(r);
  json j = readRecord(report);
  ASSERT_TRUE(j.is_object()) << describe(r);

  EXPECT_EQ(j["ember"]["version"], EMBER_VERSION);
  EXPECT_EQ(j["exit"]["reason"], "debug-exit");
  EXPECT_EQ(j["exit"]["status"], 0);
  EXPECT_EQ(j["exit"]["debug_exit_value"], 0);
  EXPECT_GT(j["run_time_s"].get<double>(), 0.0);
  EXPECT_LT(j["run_time_s"].get<double>(), r.seconds);

  ASSERT_EQ(j["vcpus"].size(), 2u);
  EXPECT_EQ(j["vcpus"][0]["id"], 0);
  EXPECT_EQ(j["vcpus"][1]["id"], 1);
  const json& exits = j["vcpus"][0]["exits"];
  // The boot vCPU wrote the serial port and the debug-exit port, and read PCI configuration.
  EXPECT_GT(exits["io_out"].get<uint64_t>(), 0u) << exits;
  EXPECT_GT(exits["io_in"].get<uint64_t>(), 0u) << exits;
  EXPECT_EQ(exits["shutdown"], 0);
  EXPECT_EQ(exits.size(), 11u) << exits;
  // The loop slept at least while the guest booted; the disk's I/O woke it.
  EXPECT_GT(j["event_loop"]["slept"].get<uint64_t>(), 0u) << j["event_loop"];
  EXPECT_TRUE(j["event_loop"]["polled"].is_number_unsigned()) << j["event_loop"];
  // Where the port exits went: the debug-exit port once, the serial port and PCI configuration
  // (0xcf8/0xcfc) many times, and no port more often than the vCPU exited for port I/O.
  const json& ports = j["vcpus"][0]["io_ports"];
  EXPECT_EQ(ports["0xf4"], 1) << ports;
  EXPECT_GT(ports["0x3f8"].get<uint64_t>(), 0u) << ports;
  EXPECT_GT(ports["0xcf8"].get<uint64_t>(), 0u) << ports;
  uint64_t port_exits = 0;
  for (const auto& [port, n] : ports.items()) port_exits += n.get<uint64_t>();
  EXPECT_EQ(port_exits, exits["io_in"].get<uint64_t>() + exits["io_out"].get<uint64_t>()) << ports;
  EXPECT_TRUE(j["vcpus"][0]["mmio_pages"].is_object());

  ASSERT_EQ(j["devices"].size(), 2u) << j["devices"];
  const json& blk = j["devices"][0];
  EXPECT_EQ(blk["id"], "blk0");
  EXPECT_EQ(blk["type"], "virtio-blk");
  EXPECT_EQ(blk["name"], "virtio-blk " + disk);
  EXPECT_EQ(blk["pci"], "00:01.0");
  EXPECT_EQ(blk["face"], c.face);
  EXPECT_EQ(blk["ioeventfd"], c.ioeventfd);
  EXPECT_GE(blk["activations"].get<uint64_t>(), 1u);
  uint64_t through_eventfd = blk["kicks"]["ioeventfd"], through_exits = blk["kicks"]["userspace"];
  if (c.ioeventfd) {
    EXPECT_GT(through_eventfd, 0u) << blk;
    EXPECT_EQ(through_exits, 0u) << blk;
  } else {
    EXPECT_EQ(through_eventfd, 0u) << blk;
    EXPECT_GT(through_exits, 0u) << blk;
  }
  // virtio-blk-rw runs on MSI-X, virtio-intx on the INTx line.
  EXPECT_GT(blk["interrupts"]["msix"].get<uint64_t>(), 0u) << blk;
  EXPECT_GT(blk["interrupts"]["intx"].get<uint64_t>(), 0u) << blk;
  // virtio-blk-rw writes 2 MiB and reads it back.
  EXPECT_GT(blk["requests"].get<uint64_t>(), 0u) << blk;
  EXPECT_GE(blk["bytes"].get<uint64_t>(), 4u << 20) << blk;
  EXPECT_EQ(blk["errors"], 0) << blk;
  EXPECT_EQ(blk["dropped"], 0) << blk;

  const json& rng = j["devices"][1];
  EXPECT_EQ(rng["id"], "rng0");
  EXPECT_EQ(rng["type"], "virtio-rng");
  EXPECT_EQ(rng["pci"], "00:02.0");
  EXPECT_GT(rng["requests"].get<uint64_t>(), 0u) << rng;
  EXPECT_GT(rng["bytes"].get<uint64_t>(), 0u) << rng;
}

INSTANTIATE_TEST_SUITE_P(FacesAndKicks, RunRecordDisk,
                         ::testing::Values(RecordCase{"modern", true}, RecordCase{"modern", false},
                                           RecordCase{"legacy", true}, RecordCase{"legacy", false}),
                         [](const auto& info) {
                           return std::string(info.param.face) +
                                  (info.param.ioeventfd ? "_ioeventfd" : "_userspace_kicks");
                         });

TEST(RunRecord, DeviceTheDriverNeverActivatedHasNoFace) {
  TempDir dir;
  std::string disk = dir.file("disk.img"), report = dir.file("record.json");
  makeDisk(disk, 1 << 20);
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk, "--report", report,
                     "--cmdline", "tests=serial"});
  ASSERT_EQ(r.status, 0) << describe(r);
  json j = readRecord(report);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_TRUE(j["devices"][0]["face"].is_null()) << j["devices"][0];
  EXPECT_EQ(j["devices"][0]["activations"], 0);
  EXPECT_EQ(j["devices"][0]["kicks"]["ioeventfd"], 0);
  EXPECT_EQ(j["devices"][0]["kicks"]["userspace"], 0);
}

TEST(RunRecord, TripleFaultNamesTheVcpuTheExitAndTheRip) {
  TempDir dir;
  std::string report = dir.file("record.json");
  auto r = runEmber(
      {"run", "--kernel", EMBER_TESTGUEST, "--report", report, "--cmdline", "tests=crash"});
  ASSERT_EQ(r.status, 3) << describe(r);
  json j = readRecord(report);
  EXPECT_EQ(j["exit"]["reason"], "vcpu-crash");
  EXPECT_EQ(j["exit"]["status"], 3);
  EXPECT_EQ(j["exit"]["vcpu"], 0);
  EXPECT_EQ(j["exit"]["exit_reason"], "KVM_EXIT_SHUTDOWN");
  ASSERT_TRUE(j["exit"]["rip"].is_string()) << j["exit"];
  EXPECT_EQ(j["exit"]["rip"].get<std::string>().rfind("0x", 0), 0u) << j["exit"];
  EXPECT_NE(j["exit"]["message"].get<std::string>().find("triple-faulted"), std::string::npos);
  EXPECT_EQ(j["vcpus"][0]["exits"]["shutdown"], 1);
}

TEST(RunRecord, GuestPanicIsItsOwnReason) {
  TempDir dir;
  std::string report = dir.file("record.json");
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--pvpanic", "--report", report,
                     "--cmdline", "tests=pvpanic"});
  ASSERT_EQ(r.status, 4) << describe(r);
  json j = readRecord(report);
  EXPECT_EQ(j["exit"]["reason"], "guest-panic");
  EXPECT_EQ(j["exit"]["status"], 4);
}

TEST(RunRecord, TimeoutIsItsOwnReason) {
  TempDir dir;
  std::string report = dir.file("record.json");
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--timeout", "1", "--report", report,
                     "--cmdline", "tests=sleep sleep.ms=15000"});
  ASSERT_EQ(r.status, 124) << describe(r);
  json j = readRecord(report);
  EXPECT_EQ(j["exit"]["reason"], "timeout");
  EXPECT_GE(j["run_time_s"].get<double>(), 0.9);
}

TEST(RunRecord, ResetThroughTheI8042) {
  TempDir dir;
  std::string report = dir.file("record.json");
  auto r = runEmber(
      {"run", "--kernel", EMBER_TESTGUEST, "--report", report, "--cmdline", "tests=reboot"});
  ASSERT_EQ(r.status, 0) << describe(r);
  json j = readRecord(report);
  EXPECT_EQ(j["exit"]["reason"], "reset");
  EXPECT_NE(j["exit"]["message"].get<std::string>().find("i8042"), std::string::npos);
}

TEST(RunRecord, SignalNamesTheSignal) {
  TempDir dir;
  std::string report = dir.file("record.json");
  ProcessOptions o;
  o.signal_after_ms = 700;
  o.signal = SIGTERM;
  o.timeout_ms = 20000;
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--report", report, "--cmdline",
                     "tests=sleep sleep.ms=15000"},
                    o);
  ASSERT_EQ(r.status, 128 + SIGTERM) << describe(r);
  json j = readRecord(report);
  EXPECT_EQ(j["exit"]["reason"], "signal");
  EXPECT_EQ(j["exit"]["signal"], "TERM");
  EXPECT_EQ(j["exit"]["status"], 128 + SIGTERM);
}

TEST(RunRecord, StartUpErrorIsRecordedWithStatusOne) {
  TempDir dir;
  std::string report = dir.file("record.json"), kernel = dir.file("not-a-kernel");
  std::ofstream(kernel) << "this is not a kernel image";
  auto r = runEmber({"run", "--kernel", kernel, "--report", report});
  expectOneErrorLine(r, "neither a bzImage nor an ELF");
  json j = readRecord(report);
  EXPECT_EQ(j["exit"]["reason"], "startup-error");
  EXPECT_EQ(j["exit"]["status"], 1);
  EXPECT_NE(j["exit"]["message"].get<std::string>().find("neither a bzImage nor an ELF"),
            std::string::npos);
  EXPECT_TRUE(j["vcpus"].empty());
  EXPECT_TRUE(j["devices"].empty());
}

TEST(RunRecord, UnwritableReportPathFailsBeforeTheGuestRuns) {
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--report",
                     "/nonexistent-ember-dir/record.json", "--cmdline", "tests=serial"});
  expectOneErrorLine(r, "--report /nonexistent-ember-dir/record.json");
}

}  // namespace
}  // namespace ember::test
