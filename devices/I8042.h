// The i8042 keyboard controller (the IBM PC/AT 8042 interface as Linux's i8042 driver drives it):
// the command byte, the self and interface tests, the reset line (command 0xFE, or output port
// bit 0 cleared: a reset ends ember with status 0), and a PS/2 keyboard on its first port whose
// answers and keys come out of the data port, raising ISA IRQ 1 when the command byte enables
// it. There is no mouse: the second port fails its tests, so the guest does not probe one.
//
// SendCtrlAltDel (PUT /actions) types Ctrl-Alt-Del on the keyboard, which a Linux guest turns
// into its init's ctrl-alt-del action, as under Firecracker.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>

#include "devices/Ps2Keyboard.h"
#include "devices/VmControl.h"
#include "kvm/Bus.h"
#include "kvm/InterruptLine.h"
#include "kvm/Result.h"

namespace ember::devices {

class I8042 : public BusDevice {
 public:
  // Registered at port 0x60 with length 5, covering 0x60 (data) and 0x64 (status/command).
  static constexpr uint16_t kBase = 0x60;
  static constexpr uint16_t kSize = 5;
  static constexpr uint32_t kIrq = 1;  // the keyboard's ISA IRQ
  // The output buffer: bytes waiting for the guest to read them. Bounded, so that a guest that
  // writes commands and never reads costs nothing; further answers are dropped.
  static constexpr size_t kOutputBytes = 16;

  // IRQ1 may be null (unit tests): the guest then polls.
  explicit I8042(VmControl& control, InterruptLine* irq1 = nullptr)
      : control_(control), irq1_(irq1) {}
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Types Ctrl-Alt-Del (set 2 codes, or set 1 with the command byte's XLATE bit). Refused when
  // the guest has not enabled the keyboard (its port disabled in the command byte, or scanning
  // off) or the output buffer has no room for the codes. From any thread.
  Result<void> sendCtrlAltDel();

  // A snapshot's copy (issue 13): the command byte, a command awaiting its data, the output
  // buffer (at most kOutputBytes when loaded from untrusted bytes) and the keyboard's state.
  // Loading raises no interrupt: a byte waiting was announced before the snapshot.
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  void command(uint8_t cmd);
  // Queues a byte for the guest and raises IRQ1 when it is the next one to be read.
  void pushLocked(uint8_t byte);
  void raiseLocked();

  VmControl& control_;
  InterruptLine* irq1_;
  mutable std::mutex mutex_;
  uint8_t command_byte_ = 0x30;  // keyboard and aux clocks disabled, no interrupts
  uint8_t pending_cmd_ = 0;      // a command waiting for its data byte
  std::deque<uint8_t> output_;
  Ps2Keyboard keyboard_;
};

}  // namespace ember::devices
