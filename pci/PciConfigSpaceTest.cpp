// PciConfigSpace: write masks, write-one-to-clear bits, accesses spanning fields, capability list.
#include <gtest/gtest.h>

#include <set>

#include "pci/PciConfigSpace.h"

namespace ember::pci {
namespace {

PciConfigSpace typicalSpace() {
  PciConfigSpace c;
  c.set16(cfg::kVendorId, 0x1af4);
  c.set16(cfg::kDeviceId, 0x1001);
  c.setWritable(cfg::kCommand, 2, 0x0547);
  c.set16(cfg::kStatus, 0xf910 /* errors + cap list */);
  c.setWriteOneToClear(cfg::kStatus, 2, 0xf900);
  c.setWritable(cfg::kInterruptLine, 1, 0xff);
  c.set8(cfg::kInterruptPin, 1);
  return c;
}

TEST(PciConfigSpace, ReadOnlyFieldsIgnoreWrites) {
  PciConfigSpace c = typicalSpace();
  c.write(cfg::kVendorId, 4, 0xdeadbeef);
  EXPECT_EQ(c.read(cfg::kVendorId, 2), 0x1af4u);
  EXPECT_EQ(c.read(cfg::kDeviceId, 2), 0x1001u);
  c.write(cfg::kInterruptPin, 1, 0x4);
  EXPECT_EQ(c.read(cfg::kInterruptPin, 1), 1u);
  c.write(cfg::kInterruptLine, 1, 0x0b);
  EXPECT_EQ(c.read(cfg::kInterruptLine, 1), 0x0bu);
}

TEST(PciConfigSpace, CommandKeepsOnlyWritableBits) {
  PciConfigSpace c = typicalSpace();
  c.write(cfg::kCommand, 2, 0xffff);
  EXPECT_EQ(c.read(cfg::kCommand, 2), 0x0547u);
  c.write(cfg::kCommand, 1, 0x00);  // low byte only
  EXPECT_EQ(c.read(cfg::kCommand, 2), 0x0500u);
}

TEST(PciConfigSpace, StatusErrorBitsAreWriteOneToClear) {
  PciConfigSpace c = typicalSpace();
  c.write(cfg::kStatus, 2, 0x0000);  // writing zeroes changes nothing
  EXPECT_EQ(c.read(cfg::kStatus, 2), 0xf910u);
  c.write(cfg::kStatus, 2, 0x0100);  // clears bit 8 only
  EXPECT_EQ(c.read(cfg::kStatus, 2), 0xf810u);
  c.write(cfg::kStatus, 2, 0xffff);  // clears every error bit; the capability bit stays
  EXPECT_EQ(c.read(cfg::kStatus, 2), 0x0010u);
}

TEST(Hostile, Case22_ConfigWriteSpanningSeveralFields) {
  PciConfigSpace c = typicalSpace();
  // One dword across command and status: the writable command bits change, the status error
  // bits are cleared, the read-only capability-list bit stays.
  c.write(cfg::kCommand, 4, 0xffffffff);
  EXPECT_EQ(c.read(cfg::kCommand, 2), 0x0547u);
  EXPECT_EQ(c.read(cfg::kStatus, 2), 0x0010u);
  // An unaligned dword across device ID and command: only the command byte changes.
  c.write(cfg::kDeviceId, 4, 0x00000000);
  EXPECT_EQ(c.read(cfg::kDeviceId, 2), 0x1001u);
  EXPECT_EQ(c.read(cfg::kCommand, 2), 0x0000u);
  // A word across interrupt line (writable) and pin (read-only).
  c.write(cfg::kInterruptLine, 2, 0x0705);
  EXPECT_EQ(c.read(cfg::kInterruptLine, 1), 0x05u);
  EXPECT_EQ(c.read(cfg::kInterruptPin, 1), 0x01u);
  // Accesses running past the end of the space touch nothing beyond it.
  c.setWritable(0xfe, 2, 0xffff);
  c.write(0xfe, 4, 0x12345678);
  EXPECT_EQ(c.read(0xfe, 2), 0x5678u);
  EXPECT_EQ(c.read(0xfe, 4), 0x5678u);
}

TEST(PciConfigSpace, CapabilityListIsWellFormedAndTerminates) {
  PciConfigSpace c;
  uint8_t body3[3] = {1, 2, 3};
  uint8_t body14[14] = {};
  EXPECT_EQ(c.read(cfg::kStatus, 2) & cfg::kStatusCapList, 0u);
  uint8_t a = c.addCapability(0x11, body3);
  uint8_t b = c.addCapability(0x09, body14);
  EXPECT_NE(a, 0);
  EXPECT_NE(b, 0);
  EXPECT_NE(c.read(cfg::kStatus, 2) & cfg::kStatusCapList, 0u);
  // Fill the space until it refuses.
  std::vector<uint8_t> added = {a, b};
  for (int i = 0; i < 100; ++i) {
    uint8_t at = c.addCapability(0x09, body14);
    if (at == 0) break;
    added.push_back(at);
  }
  EXPECT_LT(added.size(), 20u);
  // Walk: every pointer dword-aligned in 0x40..0xfc, no revisits, ends with 0, in order.
  std::set<uint8_t> seen;
  std::vector<uint8_t> walked;
  uint8_t at = static_cast<uint8_t>(c.read(cfg::kCapabilitiesPtr, 1));
  while (at != 0) {
    ASSERT_GE(at, 0x40);
    ASSERT_EQ(at % 4, 0);
    ASSERT_TRUE(seen.insert(at).second) << "capability list loops at " << int(at);
    walked.push_back(at);
    at = static_cast<uint8_t>(c.read(at + 1, 1));
  }
  EXPECT_EQ(walked, added);
  EXPECT_EQ(c.read(a, 1), 0x11u);
  EXPECT_EQ(c.read(a + 2, 1), 1u);
  EXPECT_EQ(c.read(a + 4, 1), 3u);
  // A capability that does not fit any more is refused, and the list is unchanged.
  uint8_t big[200] = {};
  EXPECT_EQ(c.addCapability(0x09, big), 0);
}

}  // namespace
}  // namespace ember::pci
