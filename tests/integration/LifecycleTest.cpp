// How ember ends: guest crash (a clear report and status 3), signals (clean stop, 128+N), the
// i8042 reset line (status 0).
#include <signal.h>

#include <gtest/gtest.h>

#include "Process.h"

namespace ember::test {
namespace {

std::string describe(const ProcessResult& r) {
  return "status " + std::to_string(r.status) + (r.timed_out ? " (timed out)" : "") +
         "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

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

INSTANTIATE_TEST_SUITE_P(Signals, SignalStop, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const auto& info) { return std::string(sigabbrev_np(info.param)); });

}  // namespace
}  // namespace ember::test
