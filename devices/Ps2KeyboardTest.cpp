// Ps2Keyboard: the answers Linux's atkbd expects, and Ctrl-Alt-Del in set 2 and translated.
#include <gtest/gtest.h>

#include "devices/Ps2Keyboard.h"

namespace ember::devices {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(Ps2Keyboard, AnswersTheCommandsAtkbdSends) {
  Ps2Keyboard kbd;
  EXPECT_EQ(kbd.write(0xf2), (Bytes{0xfa, 0xab, 0x83}));  // GETID: an MF2 keyboard
  EXPECT_EQ(kbd.write(0xf5), (Bytes{0xfa}));              // RESET_DIS: scanning off
  EXPECT_FALSE(kbd.scanning());
  EXPECT_EQ(kbd.write(0xed), (Bytes{0xfa}));  // SETLEDS, then its argument
  EXPECT_EQ(kbd.write(0x07), (Bytes{0xfa}));
  EXPECT_EQ(kbd.write(0xf3), (Bytes{0xfa}));  // SETREP and its rate
  EXPECT_EQ(kbd.write(0xf2), (Bytes{0xfa}));  // an argument, not GETID
  EXPECT_EQ(kbd.write(0xf0), (Bytes{0xfa}));  // the scan set asked for
  EXPECT_EQ(kbd.write(0x00), (Bytes{0xfa, 0x02}));
  EXPECT_EQ(kbd.write(0xee), (Bytes{0xee}));
  EXPECT_EQ(kbd.write(0xf4), (Bytes{0xfa}));  // ENABLE
  EXPECT_TRUE(kbd.scanning());
  EXPECT_EQ(kbd.write(0xff), (Bytes{0xfa, 0xaa}));  // RESET_BAT
  EXPECT_EQ(kbd.write(0x42), (Bytes{0xfa}));        // anything else is acknowledged
}

TEST(Ps2Keyboard, CtrlAltDelPressedThenReleasedInReverse) {
  EXPECT_EQ(Ps2Keyboard::ctrlAltDel(),
            (Bytes{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14}));
  EXPECT_EQ(translateToSet1(Ps2Keyboard::ctrlAltDel()),
            (Bytes{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d}));
}

}  // namespace
}  // namespace ember::devices
