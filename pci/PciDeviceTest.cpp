// PciDevice: header set-up and BAR sizing by all-ones writes for I/O, 32- and 64-bit memory BARs.
#include <gtest/gtest.h>

#include "pci/PciDevice.h"
#include "pci/testing/PciTestSupport.h"

namespace ember::pci {
namespace {

const PciIds kIds{0x1af4, 0x1001, 0x1af4, 2, 7, 0x010000};

TEST(PciDevice, HeaderHoldsIdentity) {
  PciDevice d("test", kIds);
  EXPECT_EQ(d.configRead(cfg::kVendorId, 4), 0x10011af4u);
  EXPECT_EQ(d.configRead(cfg::kRevision, 4), 0x01000007u);
  EXPECT_EQ(d.configRead(cfg::kSubsystemVendorId, 4), 0x00021af4u);
  EXPECT_EQ(d.configRead(cfg::kHeaderType, 1), 0u);
  // Read-only identity survives writes.
  d.configWrite(cfg::kVendorId, 4, 0);
  d.configWrite(cfg::kRevision, 4, 0);
  EXPECT_EQ(d.configRead(cfg::kVendorId, 4), 0x10011af4u);
  EXPECT_EQ(d.configRead(cfg::kRevision, 4), 0x01000007u);
}

TEST(PciDevice, IoBarSizing) {
  PciDevice d("test", kIds);
  d.setBar(0, BarSpec{BarKind::Io, 0x40, false, std::make_shared<testing::RecordingRegion>()});
  EXPECT_EQ(d.configRead(cfg::kBar0, 4), 0x1u);  // I/O space indicator, address 0
  d.configWrite(cfg::kBar0, 4, 0xffffffff);
  EXPECT_EQ(d.configRead(cfg::kBar0, 4), 0xffffffc1u);  // size 0x40, bit 0 set, bit 1 zero
  d.configWrite(cfg::kBar0, 4, 0xc043);                 // low bits are not writable
  EXPECT_EQ(d.configRead(cfg::kBar0, 4), 0xc041u);
  EXPECT_EQ(d.barAddress(0), 0xc040u);
}

TEST(PciDevice, Memory32BarSizing) {
  PciDevice d("test", kIds);
  d.setBar(1,
           BarSpec{BarKind::Memory32, 0x1000, false, std::make_shared<testing::RecordingRegion>()});
  d.setBar(
      2, BarSpec{BarKind::Memory32, 0x100000, true, std::make_shared<testing::RecordingRegion>()});
  d.configWrite(cfg::kBar0 + 4, 4, 0xffffffff);
  d.configWrite(cfg::kBar0 + 8, 4, 0xffffffff);
  EXPECT_EQ(d.configRead(cfg::kBar0 + 4, 4), 0xfffff000u);
  EXPECT_EQ(d.configRead(cfg::kBar0 + 8, 4), 0xfff00008u);  // prefetchable bit read-only set
  d.configWrite(cfg::kBar0 + 4, 4, 0xfebf1234);
  EXPECT_EQ(d.barAddress(1), 0xfebf1000u);
}

TEST(PciDevice, Memory64BarSizing) {
  PciDevice d("test", kIds);
  d.setBar(4,
           BarSpec{BarKind::Memory64, 0x4000, false, std::make_shared<testing::RecordingRegion>()});
  EXPECT_EQ(d.configRead(cfg::kBar0 + 16, 4), 0x4u);  // 64-bit type
  d.configWrite(cfg::kBar0 + 16, 4, 0xffffffff);
  d.configWrite(cfg::kBar0 + 20, 4, 0xffffffff);
  EXPECT_EQ(d.configRead(cfg::kBar0 + 16, 4), 0xffffc004u);
  EXPECT_EQ(d.configRead(cfg::kBar0 + 20, 4), 0xffffffffu);
  d.configWrite(cfg::kBar0 + 16, 4, 0x00008000);
  d.configWrite(cfg::kBar0 + 20, 4, 0x00000080);
  EXPECT_EQ(d.barAddress(4), 0x8000008000ULL);

  // A BAR larger than 4 GiB: the low dword has no writable address bits.
  PciDevice big("big", kIds);
  big.setBar(0, BarSpec{BarKind::Memory64, 8ULL << 30, true,
                        std::make_shared<testing::RecordingRegion>()});
  big.configWrite(cfg::kBar0, 4, 0xffffffff);
  big.configWrite(cfg::kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(big.configRead(cfg::kBar0, 4), 0x0000000cu);
  EXPECT_EQ(big.configRead(cfg::kBar0 + 4, 4), 0xfffffffeu);
}

TEST(PciDevice, UndeclaredBarsAndRomReadZeroAndIgnoreWrites) {
  PciDevice d("test", kIds);
  for (int i = 0; i < PciDevice::kBarCount; ++i) {
    d.configWrite(static_cast<uint16_t>(cfg::kBar0 + 4 * i), 4, 0xffffffff);
    EXPECT_EQ(d.configRead(static_cast<uint16_t>(cfg::kBar0 + 4 * i), 4), 0u) << "BAR " << i;
  }
  d.configWrite(cfg::kRomBar, 4, 0xffffffff);
  EXPECT_EQ(d.configRead(cfg::kRomBar, 4), 0u);
}

class CommandWatcher : public PciDevice {
 public:
  CommandWatcher() : PciDevice("watch", kIds) {}
  void commandChanged(uint16_t old_value, uint16_t new_value) override {
    changes.emplace_back(old_value, new_value);
  }
  std::vector<std::pair<uint16_t, uint16_t>> changes;
};

TEST(PciDevice, CommandChangesAreReportedOnce) {
  CommandWatcher d;
  d.configWrite(cfg::kCommand, 2, cfg::kCommandMemory | cfg::kCommandBusMaster);
  d.configWrite(cfg::kCommand, 2, cfg::kCommandMemory | cfg::kCommandBusMaster);  // no change
  d.configWrite(cfg::kStatus, 2, 0xffff);                                         // not command
  d.configWrite(cfg::kCommand, 4, 0xffff0000);  // dword spanning: command cleared
  ASSERT_EQ(d.changes.size(), 2u);
  EXPECT_EQ(d.changes[0].first, 0);
  EXPECT_EQ(d.changes[0].second, cfg::kCommandMemory | cfg::kCommandBusMaster);
  EXPECT_EQ(d.changes[1].second, 0);
}

}  // namespace
}  // namespace ember::pci
