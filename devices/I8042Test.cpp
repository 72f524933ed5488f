// I8042: reset through command 0xfe and through the output port, self test, command byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/I8042.h"
#include "devices/testing/FakeVmControl.h"

namespace ember::devices {
namespace {

constexpr uint64_t kData = 0, kStatus = 4;
constexpr uint8_t kOutputFull = 0x01, kSystemFlag = 0x04, kCommandPending = 0x08;

using testing::FakeVmControl;

class I8042Test : public ::testing::Test {
 protected:
  uint8_t in(uint64_t port) {
    uint8_t v = 0x5a;
    kbc_.read(port, std::span(&v, 1));
    return v;
  }
  void out(uint64_t port, uint8_t value) { kbc_.write(port, std::span(&value, 1)); }

  FakeVmControl control_;
  I8042 kbc_{control_};
};

TEST_F(I8042Test, ResetPulseCommandRequestsExitZero) {
  out(kStatus, 0xfe);
  ASSERT_EQ(control_.statuses, std::vector<int>{0});
  EXPECT_NE(control_.reasons[0].find("reset"), std::string::npos);
  EXPECT_EQ(control_.requests[0].reason, ExitReason::Reset);
}

TEST_F(I8042Test, OutputPortWriteWithResetBitClearRequestsExitZero) {
  out(kStatus, 0xd1);
  EXPECT_EQ(in(kStatus)&kCommandPending, kCommandPending);
  out(kData, 0x01);  // bit 0 set: the reset line stays high
  EXPECT_TRUE(control_.statuses.empty());
  EXPECT_EQ(in(kStatus)&kCommandPending, 0);

  out(kData, 0x00);  // a data byte with no command pending does nothing
  EXPECT_TRUE(control_.statuses.empty());

  out(kStatus, 0xd1);
  out(kData, 0xfe);
  ASSERT_EQ(control_.statuses, std::vector<int>{0});
  EXPECT_NE(control_.reasons[0].find("output port"), std::string::npos);
}

TEST_F(I8042Test, ANewCommandCancelsAPendingOne) {
  out(kStatus, 0xd1);
  out(kStatus, 0xaa);
  out(kData, 0x00);
  EXPECT_TRUE(control_.statuses.empty());
  EXPECT_EQ(in(kData), 0x55);
}

TEST_F(I8042Test, SelfTestAndInterfaceTest) {
  EXPECT_EQ(in(kStatus), kSystemFlag);  // nothing to read
  out(kStatus, 0xaa);
  EXPECT_EQ(in(kStatus), kSystemFlag | kOutputFull);
  EXPECT_EQ(in(kData), 0x55);
  EXPECT_EQ(in(kStatus), kSystemFlag);
  EXPECT_EQ(in(kData), 0x00);  // nothing more

  out(kStatus, 0xab);
  EXPECT_EQ(in(kStatus)&kOutputFull, kOutputFull);
  EXPECT_EQ(in(kData), 0x00);
  EXPECT_TRUE(control_.statuses.empty());
}

TEST_F(I8042Test, CommandByteRoundTrip) {
  out(kStatus, 0x20);
  EXPECT_EQ(in(kData), 0x30);  // reset value: both clocks disabled
  out(kStatus, 0x60);
  EXPECT_EQ(in(kStatus)&kCommandPending, kCommandPending);
  out(kData, 0x47);
  out(kStatus, 0x20);
  EXPECT_EQ(in(kStatus)&kOutputFull, kOutputFull);
  EXPECT_EQ(in(kData), 0x47);
  out(kStatus, 0x60);
  out(kData, 0x00);
  out(kStatus, 0x20);
  EXPECT_EQ(in(kData), 0x00);
  EXPECT_TRUE(control_.statuses.empty());
}

TEST_F(I8042Test, UnknownCommandsAndWideAccessesAreIgnored) {
  for (uint8_t cmd : {0xa7, 0xa8, 0xad, 0xae, 0xd4, 0xed, 0xff}) {
    out(kStatus, cmd);
  }
  EXPECT_TRUE(control_.statuses.empty());

  const uint8_t wide[2] = {0xfe, 0xfe};
  kbc_.write(kStatus, wide);
  EXPECT_TRUE(control_.statuses.empty());
  uint8_t two[2] = {0, 0};
  kbc_.read(kStatus, two);
  EXPECT_EQ(two[0], 0xff);
  EXPECT_EQ(two[1], 0xff);
  EXPECT_EQ(in(2), 0xff);  // ports between data and status float high
  out(2, 0xfe);
  EXPECT_TRUE(control_.statuses.empty());
}

}  // namespace
}  // namespace ember::devices
