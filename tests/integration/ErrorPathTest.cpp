// Configuration errors: one clear line on stderr naming the problem, a non-zero exit, and no
// guest code run.
#include <gtest/gtest.h>

#include <algorithm>

#include "Process.h"

namespace ember::test {
namespace {

void expectOneErrorLine(const ProcessResult& r, const std::string& needle) {
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << "stdout: " << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
  EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

TEST(ErrorPaths, MissingKernelFile) {
  expectOneErrorLine(runEmber({"run", "--kernel", "/nonexistent/kernel.elf"}),
                     "/nonexistent/kernel.elf");
}

TEST(ErrorPaths, MissingInitrdFile) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--initrd", "/nonexistent/initrd"}),
      "/nonexistent/initrd");
}

TEST(ErrorPaths, NoKvmDevice) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--kvm-device", "/nonexistent/kvm"}),
      "/nonexistent/kvm");
}

TEST(ErrorPaths, KvmDeviceThatIsNotKvm) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--kvm-device", "/dev/null"}),
                     "/dev/null");
}

TEST(ErrorPaths, AbsurdMemorySize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "900T"}),
                     "--memory");
}

TEST(ErrorPaths, MalformedMemorySize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "lots"}),
                     "--memory");
}

TEST(ErrorPaths, TinyMemorySize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "1M"}), "memory");
}

TEST(ErrorPaths, ZeroCpus) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cpus", "0"}), "--cpus");
}

TEST(ErrorPaths, UnknownOption) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--frobnicate"}),
                     "--frobnicate");
}

TEST(ErrorPaths, KernelThatIsNotAnImage) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_SOURCE_DIR "/README.md"}),
                     "README.md");
}

TEST(ErrorPaths, HelpExitsZero) {
  auto r = runEmber({"run", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--kernel"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--memory"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ember::test
