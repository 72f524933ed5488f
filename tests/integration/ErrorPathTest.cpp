// Configuration errors (hostile-guest case 39) and bad images (case 40): one clear line on stderr
// naming the problem, a non-zero exit, and no guest code run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "Process.h"
#include "devices/testing/DenyIoUring.h"

namespace ember::test {
namespace {

TEST(Hostile, Case39_MissingKernelFile) {
  expectOneErrorLine(runEmber({"run", "--kernel", "/nonexistent/kernel.elf"}),
                     "/nonexistent/kernel.elf");
}

TEST(Hostile, Case39_MissingInitrdFile) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--initrd", "/nonexistent/initrd"}),
      "/nonexistent/initrd");
}

TEST(Hostile, Case39_NoKvmDevice) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--kvm-device", "/nonexistent/kvm"}),
      "/nonexistent/kvm");
}

TEST(Hostile, Case39_KvmDeviceThatIsNotKvm) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--kvm-device", "/dev/null"}),
                     "/dev/null");
}

TEST(Hostile, Case39_AbsurdMemorySize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "900T"}),
                     "--memory");
}

TEST(Hostile, Case39_MalformedMemorySize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "lots"}),
                     "--memory");
}

TEST(Hostile, Case39_TinyMemorySize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "1M"}), "memory");
}

TEST(Hostile, Case39_ZeroCpus) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cpus", "0"}), "--cpus");
}

TEST(Hostile, Case39_UnknownOption) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--frobnicate"}),
                     "--frobnicate");
}

TEST(Hostile, Case40_KernelThatIsNotAnImage) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_SOURCE_DIR "/README.md"}), "README.md");
}

TEST(Hostile, Case39_UnknownDiskEngine) {
  TempDir dir;
  std::string disk = dir.file("d.img");
  { std::ofstream(disk).put('\0'); }
  ASSERT_EQ(truncate(disk.c_str(), 1 << 20), 0);
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk + ",aio=threads"});
  expectOneErrorLine(r, "aio must be libaio, io_uring or sync, not 'threads'");
}

TEST(Hostile, Case39_DiskNumQueuesOutOfRange) {
  TempDir dir;
  std::string disk = dir.file("d.img");
  { std::ofstream(disk).put('\0'); }
  ASSERT_EQ(truncate(disk.c_str(), 1 << 20), 0);
  for (const char* n : {"0", "65", "many", "-1"}) {
    SCOPED_TRACE(n);
    auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk + ",num-queues=" + n});
    expectOneErrorLine(r, std::string("num-queues must be 1 to 64, not '") + n + "'");
  }
}

// aio=io_uring where io_uring_setup is refused (a seccomp filter, as under a container runtime's
// default profile; kernel.io_uring_disabled=2 has the same effect): one line naming the fix, and
// the same command with aio=libaio runs.
TEST(Hostile, Case39_IoUringUnavailable) {
  TempDir dir;
  std::string disk = dir.file("d.img");
  { std::ofstream(disk).put('\0'); }
  ASSERT_EQ(truncate(disk.c_str(), 1 << 20), 0);
  ProcessOptions opts;
  opts.before_exec = [] {
    if (!devices::testing::denyIoUringSetup()) _exit(99);
  };
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk + ",aio=io_uring",
                     "--cmdline", "tests=serial"},
                    opts);
  expectOneErrorLine(r, "aio=io_uring: io_uring_setup: Operation not permitted");
  EXPECT_NE(r.err.find("kernel.io_uring_disabled=0"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("use aio=libaio"), std::string::npos) << describe(r);
  auto ok = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk + ",aio=libaio",
                      "--cmdline", "tests=serial"},
                     opts);
  EXPECT_EQ(ok.status, 0) << describe(ok);
}

TEST(Hostile, Case39_MissingDiskFile) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", "/nonexistent/disk.img"}),
      "/nonexistent/disk.img");
}

// A read-write disk on a file that cannot be written. The test runs as root, for whom file modes
// mean nothing, so the file is made immutable (chattr +i), which binds root too.
TEST(Hostile, Case39_ReadWriteDiskOnAFileThatCannotBeWritten) {
  TempDir dir;
  std::string disk = dir.file("immutable.img");
  { std::ofstream(disk).put('\0'); }
  ASSERT_EQ(truncate(disk.c_str(), 1 << 20), 0);
  if (std::system(("chattr +i " + disk + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "chattr +i is not supported on /tmp here";
  }
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--disk", disk});
  std::system(("chattr -i " + disk).c_str());
  expectOneErrorLine(r, "readonly");
}

TEST(Hostile, Case40_TruncatedKernelImage) {
  TempDir dir;
  std::string kernel = dir.file("truncated.elf");
  auto image = readFile(EMBER_TESTGUEST);
  ASSERT_GT(image.size(), 8192u);
  std::ofstream(kernel, std::ios::binary).write(reinterpret_cast<const char*>(image.data()), 4096);
  expectOneErrorLine(runEmber({"run", "--kernel", kernel}), "truncated.elf");
}

TEST(Hostile, Case40_CommandLineTooLong) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cmdline", std::string(70000, 'a')}),
      "command line");
}

TEST(CommandLine, HelpExitsZero) {
  auto r = runEmber({"run", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--kernel"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--memory"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ember::test
