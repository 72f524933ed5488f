// DebugExit: the status a guest writes to port 0xf4, at 1, 2 and 4 bytes wide.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/DebugExit.h"
#include "devices/testing/FakeVmControl.h"

namespace ember::devices {
namespace {

using testing::FakeVmControl;

TEST(DebugExit, StatusIsTheLowByteOfTheWrittenValue) {
  struct Case {
    std::vector<uint8_t> bytes;
    int status;
    const char* value;
  };
  const Case cases[] = {
      {{0x00}, 0, "0"},
      {{0x07}, 7, "7"},
      {{0xff}, 255, "255"},
      {{0x2a, 0x00}, 42, "42"},
      {{0x34, 0x12}, 0x34, "4660"},
      {{0x01, 0x02, 0x03, 0x04}, 1, "67305985"},
      {{0x00, 0x01, 0x00, 0x00}, 0, "256"},
      {{0xff, 0xff, 0xff, 0xff}, 255, "4294967295"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    FakeVmControl control;
    DebugExit dev(control);
    dev.write(0, c.bytes);
    ASSERT_EQ(control.statuses, std::vector<int>{c.status});
    EXPECT_NE(control.reasons[0].find(c.value), std::string::npos) << control.reasons[0];
    EXPECT_EQ(control.requests[0].reason, ExitReason::DebugExit);
    EXPECT_EQ(std::to_string(control.requests[0].debug_exit_value), c.value);
  }
}

TEST(DebugExit, IgnoresOtherOffsetsAndEmptyWritesAndReadsZero) {
  FakeVmControl control;
  DebugExit dev(control);
  const uint8_t one = 1;
  dev.write(1, std::span(&one, 1));
  dev.write(3, std::span(&one, 1));
  dev.write(0, std::span<const uint8_t>());
  EXPECT_TRUE(control.statuses.empty());

  uint8_t four[4] = {9, 9, 9, 9};
  dev.read(0, four);
  EXPECT_EQ(four[0] | four[1] | four[2] | four[3], 0);
  EXPECT_TRUE(control.statuses.empty());
}

}  // namespace
}  // namespace ember::devices
