// Power-off, reset and sleep-status behaviour of the hardware-reduced ACPI registers.
#include "devices/AcpiPm.h"

namespace ember::devices {

namespace {
constexpr uint64_t kSleepControl = AcpiPm::kSleepControlPort - AcpiPm::kBase;
constexpr uint64_t kSleepStatus = AcpiPm::kSleepStatusPort - AcpiPm::kBase;
constexpr uint64_t kReset = AcpiPm::kResetPort - AcpiPm::kBase;
}  // namespace

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  // Each register is one byte; a wider access reads each byte's register in turn.
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t reg = offset + i;
    // The sleep control and reset registers are write-only (reads return 0, section 4.8.3.7).
    data[i] = reg == kSleepStatus ? sleep_status_.load(std::memory_order_relaxed) : 0;
  }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    writeRegister(offset + i, data[i]);
  }
}

void AcpiPm::writeRegister(uint64_t reg, uint8_t value) {
  if (reg == kSleepControl) {
    // Section 4.8.3.7: setting SLP_EN enters the sleep state SLP_TYPx selects.
    if ((value & kSlpEn) == 0) {
      return;
    }
    uint8_t type = (value & kSlpTypMask) >> kSlpTypShift;
    if (type == kS5SleepType) {
      control_.requestExit(ExitRequest::powerOff("guest powered off (ACPI S5)"));
      return;
    }
    // No other sleep state is advertised; wake at once so the guest's wait loop ends.
    sleep_status_.fetch_or(kWakSts, std::memory_order_relaxed);
  } else if (reg == kSleepStatus) {
    // Section 4.8.3.7: WAK_STS is cleared by writing 1 to it.
    sleep_status_.fetch_and(static_cast<uint8_t>(~(value & kWakSts)), std::memory_order_relaxed);
  } else if (reg == kReset) {
    // Section 4.8.3.6: writing RESET_VALUE to RESET_REG resets the system.
    if (value == kResetValue) {
      control_.requestExit(ExitRequest::reset("guest reset (ACPI reset register)"));
    }
  }
}

}  // namespace ember::devices
