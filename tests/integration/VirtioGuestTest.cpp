// The test guest drives ember's virtio-pci devices on the real /dev/kvm: PCI enumeration and BAR
// relocation, virtio-blk read/write/flush/read-only/get-id, virtio-console, virtio-rng, MSI-X
// delivery and device reset, on the legacy and the modern interface, with ioeventfd kicks and
// with userspace kicks. After ember exits, the disk files hold exactly what the guest wrote.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "Process.h"
#include "tests/guest/pattern.h"

namespace ember::test {
namespace {

constexpr uint64_t kDiskBytes = 8 << 20;
constexpr uint64_t kRwBytes = 2 << 20;  // the guest's virtio-blk-rw test writes 2 MiB
constexpr uint64_t kRwSeed = 7, kRoSeed = 11;

void writeFile(const std::string& path, uint64_t bytes, uint64_t seed, bool pattern) {
  std::vector<uint8_t> data(bytes);
  for (uint64_t i = 0; i < bytes; i += 8) {
    uint64_t v = pattern ? pattern_qword(seed, i / 8) : 0;
    for (int b = 0; b < 8; ++b) data[i + b] = static_cast<uint8_t>(v >> (8 * b));
  }
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

struct VirtioCase {
  const char* face;  // legacy | modern
  bool ioeventfd;
  const char* aio = nullptr;  // --disk aio=; nullptr: the default
};

class VirtioGuest : public ::testing::TestWithParam<VirtioCase> {};

TEST_P(VirtioGuest, EveryDeviceTestPasses) {
  const VirtioCase& c = GetParam();
  TempDir dir;
  std::string rw = dir.file("rw.img"), ro = dir.file("ro.img");
  writeFile(rw, kDiskBytes, 0, false);
  writeFile(ro, kDiskBytes, kRoSeed, true);
  std::string kick = std::string(c.ioeventfd ? "" : ",ioeventfd=off") +
                     (c.aio != nullptr ? std::string(",aio=") + c.aio : std::string());
  std::string cmdline = std::string("tests=all virtio=") + c.face +
                        " blk.seed=" + std::to_string(kRwSeed) +
                        " blkro.seed=" + std::to_string(kRoSeed) +
                        " blk.serial=ember-disk-0 console.expect=ping-from-host";
  ProcessOptions opts;
  opts.stdin_data = "ping-from-host";
  opts.timeout_ms = 120000;
  auto r =
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "128M", "--cpus", "2", "--disk",
                rw + ",serial=ember-disk-0" + kick, "--disk", ro + ",readonly" + kick, "--console",
                "virtio", "--rng", "--cmdline", cmdline, "--log-level", "debug"},
               opts);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(linesStartingWith(r.out, "FAIL").empty()) << describe(r);
  for (const char* t : {"pci-enum", "virtio-blk-rw", "virtio-blk-ro", "virtio-blk-getid",
                        "virtio-console", "virtio-rng", "virtio-msix", "virtio-reset"}) {
    std::string want = std::string("PASS ") + t;
    bool found = false;
    for (const auto& line : linesStartingWith(r.out, want)) {
      found |= line.find(c.face) != std::string::npos || std::string(t) == "pci-enum";
    }
    EXPECT_TRUE(found) << "missing '" << want << " " << c.face << "'\n" << describe(r);
  }
  EXPECT_NE(r.out.find("virtio-console: hello from the test guest"), std::string::npos)
      << describe(r);
  // Both disks ran on the engine asked for (Machine logs it at debug level).
  std::string engine = std::string("aio=") + (c.aio != nullptr ? c.aio : "libaio");
  EXPECT_EQ(linesStartingWith(r.err, "ember: debug: disk ").size(), 2u) << describe(r);
  for (const auto& line : linesStartingWith(r.err, "ember: debug: disk ")) {
    EXPECT_NE(line.find(engine), std::string::npos) << line;
  }

  // The guest's writes are in the file, byte for byte; the rest of the disk is untouched.
  auto data = readFile(rw);
  ASSERT_EQ(data.size(), kDiskBytes);
  uint64_t bad = 0, first_bad = 0;
  for (uint64_t i = 0; i < kDiskBytes; ++i) {
    uint8_t want = i < kRwBytes ? pattern_byte(kRwSeed, i) : 0;
    if (data[i] != want && bad++ == 0) first_bad = i;
  }
  EXPECT_EQ(bad, 0u) << "first mismatch at byte " << first_bad;
  // The read-only disk is unchanged.
  auto rodata = readFile(ro);
  ASSERT_EQ(rodata.size(), kDiskBytes);
  bool ro_intact = true;
  for (uint64_t i = 0; i < kDiskBytes && ro_intact; ++i)
    ro_intact = rodata[i] == pattern_byte(kRoSeed, i);
  EXPECT_TRUE(ro_intact);
}

INSTANTIATE_TEST_SUITE_P(FacesAndKicks, VirtioGuest,
                         ::testing::Values(VirtioCase{"modern", true}, VirtioCase{"modern", false},
                                           VirtioCase{"legacy", true}, VirtioCase{"legacy", false}),
                         [](const auto& info) {
                           return std::string(info.param.face) +
                                  (info.param.ioeventfd ? "_ioeventfd" : "_userspace_kicks");
                         });

// The same guest tests with each I/O engine (aio=libaio is the default above).
INSTANTIATE_TEST_SUITE_P(Engines, VirtioGuest,
                         ::testing::Values(VirtioCase{"modern", true, "io_uring"},
                                           VirtioCase{"legacy", false, "io_uring"},
                                           VirtioCase{"modern", true, "sync"},
                                           VirtioCase{"legacy", false, "sync"},
                                           VirtioCase{"modern", true, "libaio"}),
                         [](const auto& info) {
                           return std::string(info.param.aio) + "_" + info.param.face +
                                  (info.param.ioeventfd ? "_ioeventfd" : "_userspace_kicks");
                         });

// Multi-queue virtio-blk (VIRTIO_BLK_F_MQ) on the real /dev/kvm: the test guest negotiates MQ,
// checks num_queues, has a request in flight on every queue at once and reads each chunk back
// through another queue, kicks queue indices past num_queues (legacy face), then re-initialises
// with only two queues enabled. The disk holds exactly the chunks it wrote.
struct MqCase {
  const char* face;
  const char* aio;
  int num_queues;  // 0: the default, one per vCPU
  int cpus;
};

class VirtioBlkMq : public ::testing::TestWithParam<MqCase> {};

TEST_P(VirtioBlkMq, EveryQueueCarriesIo) {
  const MqCase& c = GetParam();
  TempDir dir;
  std::string rw = dir.file("mq.img");
  writeFile(rw, kDiskBytes, 0, false);
  int queues = c.num_queues != 0 ? c.num_queues : c.cpus;
  std::string disk = rw + ",aio=" + c.aio;
  if (c.num_queues != 0) disk += ",num-queues=" + std::to_string(c.num_queues);
  constexpr uint64_t kSeed = 5;
  ProcessOptions opts;
  opts.timeout_ms = 120000;
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "128M", "--cpus",
                     std::to_string(c.cpus), "--disk", disk, "--log-level", "debug", "--cmdline",
                     std::string("tests=virtio-blk-mq virtio=") + c.face + " blkmq.queues=" +
                         std::to_string(queues) + " blkmq.seed=" + std::to_string(kSeed)},
                    opts);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, std::string("PASS virtio-blk-mq ") + c.face).size(), 1u)
      << describe(r);
  EXPECT_EQ(linesStartingWith(r.err, "ember: debug: disk ").size(), 1u) << describe(r);
  for (const auto& line : linesStartingWith(r.err, "ember: debug: disk ")) {
    EXPECT_NE(line.find(std::to_string(queues) + " request queue(s)"), std::string::npos) << line;
  }
  // The guest uses up to 4 queues (its driver's limit); each wrote one 32 KiB chunk.
  uint64_t written = 32 * 1024 * static_cast<uint64_t>(std::min(queues, 4));
  auto data = readFile(rw);
  ASSERT_EQ(data.size(), kDiskBytes);
  uint64_t bad = 0, first_bad = 0;
  for (uint64_t i = 0; i < kDiskBytes; ++i) {
    uint8_t want = i < written ? pattern_byte(kSeed, i) : 0;
    if (data[i] != want && bad++ == 0) first_bad = i;
  }
  EXPECT_EQ(bad, 0u) << "first mismatch at byte " << first_bad;
}

INSTANTIATE_TEST_SUITE_P(
    Queues, VirtioBlkMq,
    ::testing::Values(MqCase{"modern", "libaio", 4, 2}, MqCase{"legacy", "libaio", 4, 2},
                      MqCase{"modern", "io_uring", 0, 3}, MqCase{"legacy", "sync", 3, 1}),
    [](const auto& info) {
      return std::string(info.param.face) + "_" + info.param.aio + "_" +
             (info.param.num_queues != 0
                  ? std::to_string(info.param.num_queues) + "_queues"
                  : "default_queues_" + std::to_string(info.param.cpus) + "_cpus");
    });

}  // namespace
}  // namespace ember::test
