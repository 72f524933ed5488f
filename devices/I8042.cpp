// i8042 command subset: read/write command byte, self test, output port, reset pulse.
#include "devices/I8042.h"

#include <algorithm>

namespace ember::devices {

namespace {
constexpr uint64_t kData = 0, kStatus = 4;
constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystem = 0x04, kStatusCommand = 0x08;
constexpr uint8_t kCmdReadCommandByte = 0x20, kCmdWriteCommandByte = 0x60, kCmdSelfTest = 0xaa,
                  kCmdInterfaceTest = 0xab, kCmdWriteOutputPort = 0xd1, kCmdResetPulse = 0xfe;
}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (data.size() != 1) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset == kStatus) {
    data[0] = kStatusSystem | (has_output_ ? kStatusOutputFull : 0) |
              (pending_cmd_ != 0 ? kStatusCommand : 0);
  } else if (offset == kData) {
    data[0] = has_output_ ? output_ : 0;
    has_output_ = false;
  }
}

void I8042::command(uint8_t cmd) {
  switch (cmd) {
    case kCmdReadCommandByte:
      output_ = command_byte_;
      has_output_ = true;
      break;
    case kCmdWriteCommandByte:
    case kCmdWriteOutputPort:
      pending_cmd_ = cmd;
      break;
    case kCmdSelfTest:
      output_ = 0x55;
      has_output_ = true;
      break;
    case kCmdInterfaceTest:
      output_ = 0x00;
      has_output_ = true;
      break;
    case kCmdResetPulse:
      control_.requestExit(
          ExitRequest::reset("guest reset the machine through the i8042 controller"));
      break;
    default:
      break;  // keyboard/aux port commands: no devices behind this controller
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset == kStatus) {
    pending_cmd_ = 0;
    command(data[0]);
  } else if (offset == kData) {
    uint8_t cmd = std::exchange(pending_cmd_, 0);
    if (cmd == kCmdWriteCommandByte) {
      command_byte_ = data[0];
    } else if (cmd == kCmdWriteOutputPort && (data[0] & 0x01) == 0) {
      control_.requestExit(
          ExitRequest::reset("guest reset the machine through the i8042 output port"));
    }
  }
}

}  // namespace ember::devices
