// AcpiPm: S5 power-off through the sleep control register, reset through RESET_REG, the wake
// status of an unsupported sleep request, and everything else ignored; also through a Bus.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "devices/AcpiPm.h"
#include "devices/testing/FakeVmControl.h"

namespace ember::devices {
namespace {

using RecordingControl = testing::FakeVmControl;

constexpr uint64_t kControl = 0, kStatus = 1, kReset = 2;

void writeByte(AcpiPm& pm, uint64_t offset, uint8_t value) {
  pm.write(offset, std::span<const uint8_t>(&value, 1));
}

uint8_t readByte(AcpiPm& pm, uint64_t offset) {
  uint8_t v = 0xee;
  pm.read(offset, std::span<uint8_t>(&v, 1));
  return v;
}

TEST(AcpiPm, PortsAreTheOnesTheFadtNames) {
  EXPECT_EQ(AcpiPm::kBase, 0x600);
  EXPECT_EQ(AcpiPm::kSleepControlPort, 0x600);
  EXPECT_EQ(AcpiPm::kSleepStatusPort, 0x601);
  EXPECT_EQ(AcpiPm::kResetPort, 0x602);
  EXPECT_GE(AcpiPm::kBase + AcpiPm::kSize, AcpiPm::kResetPort + 1);
}

TEST(AcpiPm, SlpEnWithS5PowersOff) {
  RecordingControl c;
  AcpiPm pm(c);
  // Section 4.8.3.7: SLP_TYPx in bits 4:2, SLP_EN bit 5: S5 (5) -> 0x34, as Linux writes it.
  writeByte(pm, kControl, 0x34);
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_EQ(c.statuses[0], 0);
  EXPECT_EQ(c.reasons[0], "guest powered off (ACPI S5)");
  EXPECT_EQ(c.requests[0].reason, ExitReason::PowerOff);
}

TEST(AcpiPm, SleepTypeWithoutSlpEnDoesNothing) {
  RecordingControl c;
  AcpiPm pm(c);
  writeByte(pm, kControl, 5 << 2);
  writeByte(pm, kControl, 0);
  EXPECT_TRUE(c.requests.empty());
  EXPECT_EQ(readByte(pm, kStatus), 0);
}

TEST(AcpiPm, OtherSleepStatesWakeAtOnce) {
  RecordingControl c;
  AcpiPm pm(c);
  EXPECT_EQ(readByte(pm, kStatus), 0);
  writeByte(pm, kControl, (3 << 2) | 0x20);  // S3: not supported, not advertised
  EXPECT_TRUE(c.requests.empty());
  EXPECT_EQ(readByte(pm, kStatus), 0x80);  // WAK_STS
  writeByte(pm, kStatus, 0x01);            // writing 0 to WAK_STS leaves it
  EXPECT_EQ(readByte(pm, kStatus), 0x80);
  writeByte(pm, kStatus, 0x80);  // write 1 to clear
  EXPECT_EQ(readByte(pm, kStatus), 0);
}

// A snapshot's copy: WAK_STS set by a refused sleep request goes to a fresh AcpiPm, and a
// tampered byte keeps only the WAK_STS bit (the register has no other); a cut section sets
// nothing.
TEST(AcpiPm, SavedSleepStatusLoadsIntoAnotherAndKeepsOnlyWakSts) {
  RecordingControl c;
  AcpiPm pm(c);
  writeByte(pm, kControl, (3 << 2) | 0x20);
  StateWriter w;
  pm.save(w);
  auto bytes = w.take();
  AcpiPm again(c);
  StateReader r(bytes, "ACPI");
  again.load(r);
  ASSERT_TRUE(r.finish().ok());
  EXPECT_EQ(readByte(again, kStatus), 0x80);
  const std::vector<uint8_t> tampered = {0xff};
  AcpiPm other(c);
  StateReader r2(tampered, "ACPI");
  other.load(r2);
  EXPECT_EQ(readByte(other, kStatus), 0x80);
  AcpiPm cut(c);
  StateReader r3(std::span<const uint8_t>(), "ACPI");
  cut.load(r3);
  EXPECT_FALSE(r3.finish().ok());
  EXPECT_EQ(readByte(cut, kStatus), 0);
}

TEST(AcpiPm, ResetValueResets) {
  RecordingControl c;
  AcpiPm pm(c);
  writeByte(pm, kReset, 0x06);  // not the advertised value
  writeByte(pm, kReset, 0x00);
  EXPECT_TRUE(c.requests.empty());
  writeByte(pm, kReset, AcpiPm::kResetValue);
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_EQ(c.statuses[0], 0);
  EXPECT_EQ(c.reasons[0], "guest reset (ACPI reset register)");
  EXPECT_EQ(c.requests[0].reason, ExitReason::Reset);
}

TEST(AcpiPm, WriteOnlyAndReservedRegistersReadZeroAndIgnoreWrites) {
  RecordingControl c;
  AcpiPm pm(c);
  writeByte(pm, 3, 0xff);
  writeByte(pm, 3, AcpiPm::kResetValue);
  writeByte(pm, 3, 0x34);
  EXPECT_TRUE(c.requests.empty());
  EXPECT_EQ(readByte(pm, kControl), 0);
  EXPECT_EQ(readByte(pm, kReset), 0);
  EXPECT_EQ(readByte(pm, 3), 0);
  std::vector<uint8_t> wide(4, 0xee);
  pm.read(0, wide);
  EXPECT_EQ(wide, (std::vector<uint8_t>{0, 0, 0, 0}));
}

TEST(AcpiPm, WorksThroughThePortBus) {
  RecordingControl c;
  Bus pio("port I/O");
  ASSERT_TRUE(pio.insert(AcpiPm::kBase, AcpiPm::kSize, std::make_shared<AcpiPm>(c)).ok());
  const uint8_t s5 = (AcpiPm::kS5SleepType << AcpiPm::kSlpTypShift) | AcpiPm::kSlpEn;
  ASSERT_TRUE(pio.write(AcpiPm::kSleepControlPort, std::span<const uint8_t>(&s5, 1)));
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_EQ(c.reasons[0], "guest powered off (ACPI S5)");
  const uint8_t reset = AcpiPm::kResetValue;
  ASSERT_TRUE(pio.write(AcpiPm::kResetPort, std::span<const uint8_t>(&reset, 1)));
  ASSERT_EQ(c.requests.size(), 2u);
  EXPECT_EQ(c.reasons[1], "guest reset (ACPI reset register)");
}

}  // namespace
}  // namespace ember::devices
