// A PS/2 keyboard (the IBM PS/2 keyboard protocol as Linux's atkbd drives it): it answers the
// host's command bytes (0xFA acknowledges each one, 0xF2 identifies an MF2 keyboard, 0xFF resets
// it and reports its self test passed) and, when the VMM asks, types Ctrl-Alt-Del in scan code
// set 2. It holds no queue of its own: each call returns the bytes it sends, for the controller
// (I8042) to put in its output buffer.
#pragma once

#include <cstdint>
#include <vector>

#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::devices {

class Ps2Keyboard {
 public:
  // Answers to the host's bytes.
  static constexpr uint8_t kAck = 0xfa, kSelfTestPassed = 0xaa, kEcho = 0xee, kResend = 0xfe;

  // A byte the host wrote to the keyboard (through the i8042's data port): the bytes it answers.
  std::vector<uint8_t> write(uint8_t byte);
  // Whether the keyboard sends keys (0xF4 enables scanning, 0xF5 disables it; both reset it).
  bool scanning() const { return scanning_; }
  // Ctrl, Alt and Delete pressed and released, in scan code set 2: the make codes in that order,
  // then the break codes in reverse.
  static std::vector<uint8_t> ctrlAltDel();

  // A snapshot's copy (issue 13): the command awaiting its argument and whether it scans.
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  uint8_t awaiting_ = 0;  // a command whose argument byte comes next (0xED, 0xF0, 0xF3)
  bool scanning_ = true;
};

// The i8042's translation of scan code set 2 to set 1 (with the command byte's XLATE bit), for the
// keys Ps2Keyboard sends: a break prefix 0xF0 sets the top bit of the next code; 0xE0 passes.
std::vector<uint8_t> translateToSet1(const std::vector<uint8_t>& set2);

}  // namespace ember::devices
