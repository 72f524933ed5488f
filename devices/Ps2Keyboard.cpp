// PS/2 keyboard commands and the Ctrl-Alt-Del scan codes (see Ps2Keyboard.h).
#include "devices/Ps2Keyboard.h"

namespace ember::devices {

namespace {
// Host-to-keyboard commands.
constexpr uint8_t kSetLeds = 0xed, kEchoCmd = 0xee, kScanSet = 0xf0, kGetId = 0xf2,
                  kTypematic = 0xf3, kEnable = 0xf4, kDisable = 0xf5, kDefaults = 0xf6,
                  kResendCmd = 0xfe, kReset = 0xff;
// An MF2 keyboard's identity (0xF2's answer).
constexpr uint8_t kIdMf2[2] = {0xab, 0x83};
// Set 2 codes of the keys typed, and the prefixes.
constexpr uint8_t kExtended = 0xe0, kBreak = 0xf0, kLeftCtrl = 0x14, kLeftAlt = 0x11,
                  kDelete = 0x71;  // Delete is extended (E0 71)
}  // namespace

std::vector<uint8_t> Ps2Keyboard::write(uint8_t byte) {
  if (awaiting_ != 0) {
    uint8_t cmd = awaiting_;
    awaiting_ = 0;
    if (cmd == kScanSet && byte == 0) {
      return {kAck, 0x02};  // the set in use: ember's keyboard stays in set 2
    }
    return {kAck};  // LEDs, typematic rate, scan set: accepted
  }
  switch (byte) {
    case kSetLeds:
    case kScanSet:
    case kTypematic:
      awaiting_ = byte;
      return {kAck};
    case kEchoCmd:
      return {kEcho};
    case kGetId:
      return {kAck, kIdMf2[0], kIdMf2[1]};
    case kEnable:
      scanning_ = true;
      return {kAck};
    case kDisable:
    case kDefaults:
      scanning_ = byte == kDefaults;
      return {kAck};
    case kResendCmd:
      return {kAck};
    case kReset:
      scanning_ = true;
      return {kAck, kSelfTestPassed};
    default:
      // Set 3's per-key commands (0xF7..0xFD) and anything else: acknowledged, no effect.
      return {kAck};
  }
}

std::vector<uint8_t> Ps2Keyboard::ctrlAltDel() {
  return {kLeftCtrl, kLeftAlt, kExtended, kDelete, kExtended, kBreak,
          kDelete,   kBreak,   kLeftAlt,  kBreak,  kLeftCtrl};
}

std::vector<uint8_t> translateToSet1(const std::vector<uint8_t>& set2) {
  std::vector<uint8_t> out;
  bool released = false;
  for (uint8_t b : set2) {
    if (b == kBreak) {
      released = true;
      continue;
    }
    uint8_t code = b;
    switch (b) {
      case kLeftCtrl:
        code = 0x1d;
        break;
      case kLeftAlt:
        code = 0x38;
        break;
      case kDelete:
        code = 0x53;
        break;
      default:
        break;  // 0xE0 and anything the keyboard does not send pass unchanged
    }
    if (b != kExtended && released) {
      code |= 0x80;
      released = false;
    }
    out.push_back(code);
  }
  return out;
}

void Ps2Keyboard::save(StateWriter& w) const {
  w.u8(awaiting_);
  w.boolean(scanning_);
}

void Ps2Keyboard::load(StateReader& r) {
  uint8_t awaiting = r.u8("keyboard command");
  // Only the commands that take an argument byte can be waiting for one.
  if (r.ok() && awaiting != 0 && awaiting != kSetLeds && awaiting != kScanSet &&
      awaiting != kTypematic) {
    r.fail("keyboard command", fmt::format("{:#04x} takes no argument byte", awaiting));
  }
  awaiting_ = r.ok() ? awaiting : 0;
  scanning_ = r.boolean("keyboard scanning");
}

}  // namespace ember::devices
