// The i8042 keyboard controller's system-control side: enough for the guest to find a controller
// without a keyboard and to reset the machine by pulsing the reset line (command 0xfe, or output
// port bit 0 cleared). A reset ends ember with status 0.
#pragma once

#include <cstdint>
#include <mutex>

#include "devices/VmControl.h"
#include "kvm/Bus.h"

namespace ember::devices {

class I8042 : public BusDevice {
 public:
  // Registered at port 0x60 with length 5, covering 0x60 (data) and 0x64 (status/command).
  static constexpr uint16_t kBase = 0x60;
  static constexpr uint16_t kSize = 5;

  explicit I8042(VmControl& control) : control_(control) {}
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  void command(uint8_t cmd);
  VmControl& control_;
  std::mutex mutex_;
  uint8_t command_byte_ = 0x30;  // keyboard and aux clocks disabled, no interrupts
  uint8_t pending_cmd_ = 0;      // a command waiting for its data byte
  bool has_output_ = false;
  uint8_t output_ = 0;
};

}  // namespace ember::devices
