// i8042 controller commands, the output buffer and IRQ 1 (see I8042.h).
#include "devices/I8042.h"

#include <algorithm>

namespace ember::devices {

namespace {
constexpr uint64_t kData = 0, kStatus = 4;
// Status register bits.
constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystem = 0x04, kStatusCommand = 0x08;
// Command byte bits.
constexpr uint8_t kCtrKbdInt = 0x01, kCtrKbdDisabled = 0x10, kCtrAuxDisabled = 0x20,
                  kCtrTranslate = 0x40;
// Controller commands.
constexpr uint8_t kCmdReadCommandByte = 0x20, kCmdWriteCommandByte = 0x60, kCmdDisableAux = 0xa7,
                  kCmdEnableAux = 0xa8, kCmdAuxTest = 0xa9, kCmdSelfTest = 0xaa,
                  kCmdInterfaceTest = 0xab, kCmdDisableKbd = 0xad, kCmdEnableKbd = 0xae,
                  kCmdWriteOutputPort = 0xd1, kCmdWriteKbdOutput = 0xd2, kCmdWriteAuxOutput = 0xd3,
                  kCmdWriteAux = 0xd4, kCmdResetPulse = 0xfe;
// The answers of the tests: passed, and (the second port) "clock line stuck low".
constexpr uint8_t kSelfTestOk = 0x55, kInterfaceOk = 0x00, kInterfaceClockLow = 0x01;
}  // namespace

void I8042::raiseLocked() {
  // ISA IRQ 1 is edge-triggered: one pulse per byte that becomes readable.
  if (irq1_ != nullptr && (command_byte_ & kCtrKbdInt) != 0) {
    irq1_->setLevel(true);
    irq1_->setLevel(false);
  }
}

void I8042::pushLocked(uint8_t byte) {
  if (output_.size() >= kOutputBytes) return;  // the guest is not reading: dropped
  output_.push_back(byte);
  if (output_.size() == 1) raiseLocked();
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (data.size() != 1) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset == kStatus) {
    data[0] = kStatusSystem | (output_.empty() ? 0 : kStatusOutputFull) |
              (pending_cmd_ != 0 ? kStatusCommand : 0);
  } else if (offset == kData) {
    if (output_.empty()) {
      data[0] = 0;
      return;
    }
    data[0] = output_.front();
    output_.pop_front();
    if (!output_.empty()) raiseLocked();  // the next byte
  }
}

void I8042::command(uint8_t cmd) {
  switch (cmd) {
    case kCmdReadCommandByte:
      pushLocked(command_byte_);
      break;
    case kCmdWriteCommandByte:
    case kCmdWriteOutputPort:
    case kCmdWriteKbdOutput:
    case kCmdWriteAuxOutput:
    case kCmdWriteAux:
      pending_cmd_ = cmd;
      break;
    case kCmdSelfTest:
      pushLocked(kSelfTestOk);
      break;
    case kCmdInterfaceTest:
      pushLocked(kInterfaceOk);
      break;
    case kCmdAuxTest:
      pushLocked(kInterfaceClockLow);  // no mouse on the second port
      break;
    case kCmdDisableKbd:
      command_byte_ |= kCtrKbdDisabled;
      break;
    case kCmdEnableKbd:
      command_byte_ &= static_cast<uint8_t>(~kCtrKbdDisabled);
      break;
    case kCmdDisableAux:
      command_byte_ |= kCtrAuxDisabled;
      break;
    case kCmdEnableAux:
      command_byte_ &= static_cast<uint8_t>(~kCtrAuxDisabled);
      break;
    case kCmdResetPulse:
      control_.requestExit(
          ExitRequest::reset("guest reset the machine through the i8042 controller"));
      break;
    default:
      break;  // other commands: no effect
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
    return;
  }
  if (offset != kData) return;
  switch (std::exchange(pending_cmd_, 0)) {
    case kCmdWriteCommandByte: {
      bool was_enabled = (command_byte_ & kCtrKbdInt) != 0;
      command_byte_ = data[0];
      // Interrupts just enabled with a byte waiting: it is announced now.
      if (!was_enabled && !output_.empty()) raiseLocked();
      break;
    }
    case kCmdWriteOutputPort:
      if ((data[0] & 0x01) == 0) {
        control_.requestExit(
            ExitRequest::reset("guest reset the machine through the i8042 output port"));
      }
      break;
    case kCmdWriteKbdOutput:
      pushLocked(data[0]);  // as if the keyboard had sent it
      break;
    case kCmdWriteAuxOutput:
      // The second port's loopback: there is no mouse, so the byte does not come back as sent
      // (the guest then runs the interface test, which fails).
      pushLocked(static_cast<uint8_t>(~data[0]));
      break;
    case kCmdWriteAux:
      break;  // to the absent mouse
    default:
      for (uint8_t b : keyboard_.write(data[0])) pushLocked(b);
      break;
  }
}

Result<void> I8042::sendCtrlAltDel() {
  std::lock_guard lock(mutex_);
  if ((command_byte_ & kCtrKbdDisabled) != 0 || !keyboard_.scanning()) {
    return makeError(Errc::Busy,
                     "the guest has not enabled its i8042 keyboard (no i8042/atkbd driver, or "
                     "i8042.nokbd)");
  }
  std::vector<uint8_t> codes = Ps2Keyboard::ctrlAltDel();
  if ((command_byte_ & kCtrTranslate) != 0) codes = translateToSet1(codes);
  if (output_.size() + codes.size() > kOutputBytes) {
    return makeError(Errc::Busy, "the guest is not reading its i8042 keyboard; try again");
  }
  for (uint8_t b : codes) pushLocked(b);
  return okResult();
}

void I8042::save(StateWriter& w) const {
  std::lock_guard lock(mutex_);
  w.u8(command_byte_);
  w.u8(pending_cmd_);
  std::vector<uint8_t> out(output_.begin(), output_.end());
  w.blob(out);
  keyboard_.save(w);
}

void I8042::load(StateReader& r) {
  std::lock_guard lock(mutex_);
  command_byte_ = r.u8("command byte");
  uint8_t pending = r.u8("pending command");
  // Only the commands that take a data byte can be waiting for one.
  if (r.ok() && pending != 0 && pending != kCmdWriteCommandByte && pending != kCmdWriteOutputPort &&
      pending != kCmdWriteKbdOutput && pending != kCmdWriteAuxOutput && pending != kCmdWriteAux) {
    r.fail("pending command", fmt::format("{:#04x} takes no data byte", pending));
  }
  pending_cmd_ = r.ok() ? pending : 0;
  auto out = r.blob("output buffer", kOutputBytes);
  output_.assign(out.begin(), out.end());
  keyboard_.load(r);
}

}  // namespace ember::devices
