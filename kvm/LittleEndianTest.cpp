// loadLe/storeLe: every width from uint8_t to uint64_t, spans shorter than, equal to and longer
// than the value (zero extension, truncation, ignored and filled bytes), and constexpr use.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "kvm/LittleEndian.h"

namespace ember {
namespace {

constexpr std::array<uint8_t, 10> kBytes = {0x01, 0x02, 0x03, 0x04, 0x05,
                                            0x06, 0x07, 0x08, 0x09, 0x0a};

// The value that `n` bytes of kBytes encode, computed without the helper.
uint64_t expectedValue(size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v * 256 + kBytes[i];
  return v;
}

// Checked at compile time: both helpers work in constant expressions.
constexpr std::array<uint8_t, 4> storedInConstexpr(uint32_t value) {
  std::array<uint8_t, 4> b{};
  storeLe(std::span<uint8_t>(b), value);
  return b;
}
static_assert(loadLe<uint32_t>(kBytes) == 0x04030201u);
static_assert(loadLe<uint16_t>(std::span(kBytes).first(1)) == 0x01u);
static_assert(loadLe<uint64_t>(std::span<const uint8_t>()) == 0u);
static_assert(storedInConstexpr(0xa1b2c3d4) == std::array<uint8_t, 4>{0xd4, 0xc3, 0xb2, 0xa1});
static_assert(loadLe<uint32_t>(storedInConstexpr(0xa1b2c3d4)) == 0xa1b2c3d4u);

template <typename T>
class LittleEndianWidth : public ::testing::Test {};
using Widths = ::testing::Types<uint8_t, uint16_t, uint32_t, uint64_t>;
TYPED_TEST_SUITE(LittleEndianWidth, Widths);

TYPED_TEST(LittleEndianWidth, LoadsTheLowBytesFirstAtEverySpanLength) {
  // Shorter than the type: the missing high bytes are zero; equal: every byte; longer: the
  // bytes past sizeof(T) are ignored.
  for (size_t n = 0; n <= kBytes.size(); ++n) {
    SCOPED_TRACE(n);
    size_t used = n < sizeof(TypeParam) ? n : sizeof(TypeParam);
    EXPECT_EQ(loadLe<TypeParam>(std::span(kBytes).first(n)),
              static_cast<TypeParam>(expectedValue(used)));
  }
}

TYPED_TEST(LittleEndianWidth, StoresTheLowBytesFirstAtEverySpanLength) {
  const auto value = static_cast<TypeParam>(0x8877665544332211ULL);
  for (size_t n = 0; n <= 10; ++n) {
    SCOPED_TRACE(n);
    std::vector<uint8_t> buf(n + 2, 0xee);  // one guard byte either side
    storeLe(std::span(buf).subspan(1, n), value);
    EXPECT_EQ(buf.front(), 0xee);
    EXPECT_EQ(buf.back(), 0xee);
    for (size_t i = 0; i < n; ++i) {
      uint8_t expected = i < sizeof(TypeParam) ? static_cast<uint8_t>(0x11 * (i + 1)) : 0x00;
      EXPECT_EQ(buf[1 + i], expected) << "byte " << i;
    }
  }
}

TYPED_TEST(LittleEndianWidth, FillsTheBytesPastTheValueWhenAsked) {
  std::array<uint8_t, 12> buf{};
  storeLe(std::span(buf), static_cast<TypeParam>(0), kAllOnes);
  for (size_t i = 0; i < buf.size(); ++i) {
    EXPECT_EQ(buf[i], i < sizeof(TypeParam) ? 0x00 : 0xff) << "byte " << i;
  }
}

TYPED_TEST(LittleEndianWidth, RoundTripsAtItsOwnWidth) {
  const TypeParam values[] = {0, 1, 0x80, static_cast<TypeParam>(0xfedcba9876543210ULL),
                              static_cast<TypeParam>(~TypeParam{0})};
  for (TypeParam v : values) {
    std::array<uint8_t, sizeof(TypeParam)> buf{};
    storeLe(std::span(buf), v);
    EXPECT_EQ(loadLe<TypeParam>(buf), v);
  }
}

TEST(LittleEndian, ShortBusAccessesDecodeLikeTheRegisterTheyHit) {
  // A 1- or 2-byte access to a 32-bit register: the low bytes, zero-extended.
  const std::array<uint8_t, 2> word = {0xf4, 0x1a};
  EXPECT_EQ(loadLe<uint32_t>(word), 0x1af4u);
  EXPECT_EQ(loadLe<uint32_t>(std::span(word).first(1)), 0xf4u);
  // An 8-byte read of a 32-bit value from an absent register: the high half reads as all ones.
  std::array<uint8_t, 8> out{};
  storeLe(std::span(out), uint32_t{0x12345678}, kAllOnes);
  EXPECT_EQ(loadLe<uint64_t>(out), 0xffffffff12345678ULL);
  // The same read zero-extended (the default).
  storeLe(std::span(out), uint32_t{0x12345678});
  EXPECT_EQ(loadLe<uint64_t>(out), 0x12345678ULL);
}

TEST(LittleEndian, StoreTruncatesToTheSpan) {
  std::array<uint8_t, 3> out{};
  storeLe(std::span(out), uint64_t{0x1122334455667788});
  EXPECT_EQ(out, (std::array<uint8_t, 3>{0x88, 0x77, 0x66}));
}

}  // namespace
}  // namespace ember
