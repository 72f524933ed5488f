// PvPanic: its PCI identity, the events it recognises, a PANICKED write ending the VM with the
// panic status, CRASH_LOADED letting it go on, and what a guest may write besides (unknown bits,
// other offsets, other widths).
#include <gtest/gtest.h>

#include "devices/PvPanic.h"
#include "devices/testing/FakeVmControl.h"
#include "pci/PciConfigSpace.h"

namespace ember::devices {
namespace {

using testing::FakeVmControl;

uint8_t readEvents(PvPanic& dev, uint64_t offset = 0) {
  uint8_t b = 0xcc;
  dev.bar(PvPanic::kBar).region->read(offset, std::span<uint8_t>(&b, 1));
  return b;
}

void writeByte(PvPanic& dev, uint8_t value, uint64_t offset = 0) {
  dev.bar(PvPanic::kBar).region->write(offset, std::span<const uint8_t>(&value, 1));
}

TEST(PvPanic, IsQemusPvpanicPciDevice) {
  FakeVmControl control;
  PvPanic dev(control);
  EXPECT_EQ(dev.configRead(pci::cfg::kVendorId, 2), 0x1b36u);
  EXPECT_EQ(dev.configRead(pci::cfg::kDeviceId, 2), 0x0011u);
  EXPECT_EQ(dev.configRead(0x09, 1), 0x00u);                   // prog-if
  EXPECT_EQ(dev.configRead(pci::cfg::kClassSub, 2), 0x0880u);  // system peripheral, other
  EXPECT_EQ(dev.bar(PvPanic::kBar).kind, pci::BarKind::Memory32);
  EXPECT_EQ(dev.bar(PvPanic::kBar).size, PvPanic::kBarSize);
}

TEST(PvPanic, ReadsTheEventsItRecognises) {
  FakeVmControl control;
  PvPanic dev(control);
  EXPECT_EQ(readEvents(dev), PvPanic::kPanicked | PvPanic::kCrashLoaded);
  EXPECT_EQ(readEvents(dev, 1), 0) << "one register, at offset 0";
  uint8_t wide[4] = {0xcc, 0xcc, 0xcc, 0xcc};
  dev.bar(PvPanic::kBar).region->read(0, wide);
  EXPECT_EQ(wide[0], PvPanic::kEvents);
  EXPECT_EQ(wide[1], 0);
  EXPECT_EQ(wide[3], 0);
}

TEST(PvPanic, PanickedEndsTheVmWithThePanicStatus) {
  FakeVmControl control;
  PvPanic dev(control);
  writeByte(dev, PvPanic::kPanicked);
  ASSERT_EQ(control.requests.size(), 1u);
  EXPECT_EQ(control.requests[0].reason, ExitReason::GuestPanic);
  EXPECT_EQ(control.requests[0].status, kExitGuestPanic);
  EXPECT_NE(control.reasons[0].find("panicked"), std::string::npos) << control.reasons[0];
  EXPECT_STREQ(exitReasonName(ExitReason::GuestPanic), "guest-panic");
}

TEST(PvPanic, CrashLoadedLetsTheVmGoOn) {
  FakeVmControl control;
  PvPanic dev(control);
  writeByte(dev, PvPanic::kCrashLoaded);
  writeByte(dev, PvPanic::kCrashLoaded);
  EXPECT_TRUE(control.requests.empty());
}

TEST(Hostile, PvPanicUnknownBitsOtherOffsetsAndEmptyWritesAreIgnored) {
  FakeVmControl control;
  PvPanic dev(control);
  writeByte(dev, 0xfc);  // bits 2-7: not recognised (bit 2 is a newer "shutdown" event)
  writeByte(dev, PvPanic::kPanicked, 1);
  writeByte(dev, PvPanic::kPanicked, PvPanic::kBarSize - 1);
  dev.bar(PvPanic::kBar).region->write(0, std::span<const uint8_t>());
  EXPECT_TRUE(control.requests.empty());
  // PANICKED among unknown bits still counts: the guest set a bit both sides recognise.
  writeByte(dev, 0xf0 | PvPanic::kPanicked);
  ASSERT_EQ(control.requests.size(), 1u);
  EXPECT_EQ(control.requests[0].reason, ExitReason::GuestPanic);
}

}  // namespace
}  // namespace ember::devices
