// OptionSpecs: memory sizes with their units and their errors. (The device specifications are
// tested through the command line in CliTest.cpp.)
#include <gtest/gtest.h>

#include "vmm/OptionSpecs.h"

namespace ember::vmm {
namespace {

TEST(OptionSpecs, ParseMemorySizeUnits) {
  constexpr uint64_t K = 1ULL << 10, M = 1ULL << 20, G = 1ULL << 30, T = 1ULL << 40;
  const std::pair<const char*, uint64_t> good[] = {
      {"1024K", 1024 * K},
      {"256M", 256 * M},
      {"3G", 3 * G},
      {"1T", T},
      {"256", 256 * M},
      {"0", 0},
      {"64MB", 64 * M},
      {"64MiB", 64 * M},
      {"2GB", 2 * G},
      {"2GiB", 2 * G},
      {"512k", 512 * K},
      {"512m", 512 * M},
      {"4g", 4 * G},
      {"1t", T},
      {"2gib", 2 * G},
      {"8kb", 8 * K},
      {"16777215T", 16777215 * T},
  };
  for (const auto& [text, bytes] : good) {
    SCOPED_TRACE(text);
    auto r = parseMemorySize(text);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, bytes);
  }
}

TEST(OptionSpecs, ParseMemorySizeErrors) {
  for (const char* text : {"",
                           "M",
                           "12Q",
                           "lots",
                           "1.5G",
                           "-1G",
                           "+1G",
                           " 1G",
                           "1 G",
                           "1GG",
                           "1GiBB",
                           "1B",
                           "1XB",
                           "1XiB",
                           "0x100M",
                           "16777216T",
                           "99999999999T",
                           "17592186044416M",
                           "18446744073709551616",
                           "99999999999999999999999M"}) {
    SCOPED_TRACE(text);
    auto r = parseMemorySize(text);
    ASSERT_FALSE(r.ok()) << *r;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
    EXPECT_NE(r.error().message.find(std::string("'") + text + "'"), std::string::npos)
        << r.error().message;
  }
}

TEST(OptionSpecs, ParseShareSpec) {
  auto plain = parseShareSpec("/srv/data");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->host, "/srv/data");
  EXPECT_EQ(plain->guest, "");
  EXPECT_FALSE(plain->readonly);
  auto moved = parseShareSpec("out:/mnt/out");
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->host, "out");
  EXPECT_EQ(moved->guest, "/mnt/out");
  auto ro = parseShareSpec("/a:/b:ro");
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(ro->readonly);
  EXPECT_FALSE(parseShareSpec("/a:/b:rw")->readonly);
}

TEST(OptionSpecs, ParseShareSpecErrors) {
  for (const char* bad : {"", ":/b", "/a:b", "/a:", "/a:/b:rx", "/a:/b:ro:x"}) {
    auto r = parseShareSpec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--share"), std::string::npos) << r.error().message;
  }
  EXPECT_NE(parseShareSpec("/a:b").error().message.find("not absolute"), std::string::npos);
}

}  // namespace
}  // namespace ember::vmm
