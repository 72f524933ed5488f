// ember boots the freestanding test guest on the real /dev/kvm and the guest's own checks pass.
#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "Process.h"

namespace ember::test {
namespace {

struct BootCase {
  const char* memory;
  int cpus;
};

class TestGuestBoot : public ::testing::TestWithParam<BootCase> {};

TEST_P(TestGuestBoot, AllGuestTestsPass) {
  const BootCase& c = GetParam();
  std::string cmdline =
      std::string("tests=all expect.mem=") + c.memory + " expect.cpus=" + std::to_string(c.cpus);
  // cmdline.len counts the whole line, its own token included: iterate to the fixed point.
  std::string full;
  for (size_t len = cmdline.size();;) {
    full = cmdline + " cmdline.len=" + std::to_string(len);
    if (full.size() == len) break;
    len = full.size();
  }
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", c.memory, "--cpus",
                     std::to_string(c.cpus), "--cmdline", full});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(linesStartingWith(r.out, "FAIL").empty()) << describe(r);
  for (const char* t : {"serial", "memory", "timer", "smp", "cmdline"}) {
    EXPECT_EQ(linesStartingWith(r.out, std::string("PASS ") + t).size(), 1u)
        << "missing PASS " << t << "\n"
        << describe(r);
  }
  EXPECT_EQ(linesStartingWith(r.out, "5 passed, 0 failed").size(), 1u) << describe(r);
  // The command line the guest echoes is exactly the one given.
  EXPECT_EQ(linesStartingWith(r.out, "cmdline: " + full + "\n").size() +
                linesStartingWith(r.out, "cmdline: " + full).size(),
            1u)
      << describe(r);
  // Logs never leak into the guest console.
  EXPECT_EQ(r.out.find("ember:"), std::string::npos) << describe(r);
}

INSTANTIATE_TEST_SUITE_P(MemoryAndCpus, TestGuestBoot,
                         ::testing::Values(BootCase{"64M", 1}, BootCase{"64M", 2},
                                           BootCase{"3G", 1}, BootCase{"3G", 2}, BootCase{"5G", 2}),
                         [](const auto& info) {
                           return std::string("mem") + info.param.memory + "_cpus" +
                                  std::to_string(info.param.cpus);
                         });

// The CMOS RTC against real KVM: the guest reads the host's UTC time from ports 0x70/0x71 and
// takes the update-ended interrupt on IRQ 8 (tests/guest/tests_rtc.cpp).
TEST(TestGuestBoot, CmosRtcHasTheHostsTimeAndInterrupts) {
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "64M", "--cmdline",
                     "tests=rtc expect.rtc=" + std::to_string(::time(nullptr))});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS rtc").size(), 1u) << describe(r);
}

TEST(TestGuestBoot, FailingGuestTestGivesNonZeroStatus) {
  // The guest is told to expect a different memory size than it gets: its memory test must fail
  // and ember must exit with the guest's failure status.
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "64M", "--cmdline",
                     "tests=memory expect.mem=128M"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "FAIL memory:").size(), 1u) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "0 passed, 1 failed").size(), 1u) << describe(r);
}

TEST(TestGuestBoot, UnknownTestNameFails) {
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cmdline", "tests=serial,nosuchtest"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "FAIL nosuchtest: unknown test").size(), 1u) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS serial").size(), 1u) << describe(r);
}

TEST(TestGuestBoot, WorksWithStdinClosed) {
  ProcessOptions o;
  o.close_stdin = true;
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--cmdline", "tests=serial"}, o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
}

}  // namespace
}  // namespace ember::test
