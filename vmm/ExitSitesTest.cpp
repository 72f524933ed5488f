#include <gtest/gtest.h>

#include "vmm/ExitSites.h"

namespace ember::vmm {
namespace {

TEST(ExitSites, CountsEachPortInTheOrderItFirstExited) {
  ExitSites s;
  s.countPort(0x3f8);
  s.countPort(0x70);
  s.countPort(0x3f8);
  s.countPort(0x3fd);
  s.countPort(0x3f8);
  ASSERT_EQ(s.ports().size(), 3u);
  EXPECT_EQ(s.ports()[0].address, 0x3f8u);
  EXPECT_EQ(s.ports()[0].exits, 3u);
  EXPECT_EQ(s.ports()[1].address, 0x70u);
  EXPECT_EQ(s.ports()[1].exits, 1u);
  EXPECT_EQ(s.ports()[2].address, 0x3fdu);
  EXPECT_EQ(s.portOther(), 0u);
  EXPECT_TRUE(s.mmioPages().empty());
}

TEST(ExitSites, CountsMmioByPage) {
  ExitSites s;
  s.countMmio(0xe0000000);
  s.countMmio(0xe0000ffc);
  s.countMmio(0xe0001000);
  ASSERT_EQ(s.mmioPages().size(), 2u);
  EXPECT_EQ(s.mmioPages()[0].address, 0xe0000000u);
  EXPECT_EQ(s.mmioPages()[0].exits, 2u);
  EXPECT_EQ(s.mmioPages()[1].address, 0xe0001000u);
  EXPECT_EQ(s.mmioPages()[1].exits, 1u);
  EXPECT_TRUE(s.ports().empty());
}

// Hostile guest: it touches every port and a million pages; the table stays bounded and every
// exit is still counted somewhere.
TEST(ExitSites, AGuestTouchingEverySiteIsBoundedAndCountedInOther) {
  ExitSites s;
  for (uint32_t port = 0; port <= 0xffff; ++port) {
    s.countPort(static_cast<uint16_t>(port));
  }
  for (uint64_t page = 0; page < 1'000'000; ++page) {
    s.countMmio(page * ExitSites::kMmioPage);
  }
  EXPECT_EQ(s.ports().size(), ExitSites::kMaxSites);
  EXPECT_EQ(s.portOther(), 0x10000u - ExitSites::kMaxSites);
  EXPECT_EQ(s.mmioPages().size(), ExitSites::kMaxSites);
  EXPECT_EQ(s.mmioOther(), 1'000'000u - ExitSites::kMaxSites);
  // A site already in the table goes on counting there.
  s.countPort(0);
  EXPECT_EQ(s.ports()[0].exits, 2u);
  EXPECT_EQ(s.portOther(), 0x10000u - ExitSites::kMaxSites);
}

}  // namespace
}  // namespace ember::vmm
