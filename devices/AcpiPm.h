// The hardware-reduced ACPI power-management registers (ACPI 6.5 section 4.8.3.7 "Sleep Control
// and Status Registers", section 4.8.3.6 "Reset Register"), three byte-wide registers in port I/O
// space that the FADT points at.
//
// Writing SLP_EN with the S5 sleep type the DSDT's \_S5 package advertises powers the machine
// off; writing the reset value to the reset register resets it. Ember has no suspend: any other
// sleep request completes at once, as if the machine woke straight away (WAK_STS is set, so a
// guest polling for its wake-up moves on). The device is thread-safe: vCPU threads call it
// concurrently.
#pragma once

#include <atomic>
#include <cstdint>

#include "devices/VmControl.h"
#include "kvm/Bus.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::devices {

class AcpiPm : public BusDevice {
 public:
  // Port layout (register it on the PIO bus at kBase with length kSize).
  static constexpr uint16_t kBase = 0x600;
  static constexpr uint16_t kSize = 4;
  static constexpr uint16_t kSleepControlPort = kBase + 0;  // FADT SLEEP_CONTROL_REG
  static constexpr uint16_t kSleepStatusPort = kBase + 1;   // FADT SLEEP_STATUS_REG
  static constexpr uint16_t kResetPort = kBase + 2;         // FADT RESET_REG
  // offset 3 is reserved: reads 0, writes ignored.

  // The value written to RESET_REG to reset the machine (FADT RESET_VALUE).
  static constexpr uint8_t kResetValue = 0x01;
  // The S5 (soft-off) sleep type, SLP_TYPx, that \_S5 advertises.
  static constexpr uint8_t kS5SleepType = 5;

  // Section 4.8.3.7: sleep control register bits 4:2 SLP_TYPx and bit 5 SLP_EN; sleep status
  // register bit 7 WAK_STS (write 1 to clear).
  static constexpr uint8_t kSlpTypShift = 2;
  static constexpr uint8_t kSlpTypMask = 0x1c;
  static constexpr uint8_t kSlpEn = 0x20;
  static constexpr uint8_t kWakSts = 0x80;

  explicit AcpiPm(VmControl& control) : control_(control) {}
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // A snapshot's copy (issue 13): the sleep status register (WAK_STS).
  void save(StateWriter& w) const { w.u8(sleep_status_.load()); }
  void load(StateReader& r) {
    uint8_t v = r.u8("sleep status");
    if (r.ok()) sleep_status_ = v & kWakSts;
  }

 private:
  void writeRegister(uint64_t reg, uint8_t value);

  VmControl& control_;
  std::atomic<uint8_t> sleep_status_{0};
};

}  // namespace ember::devices
