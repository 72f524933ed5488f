// Little-endian integer access over a byte span: the one place that turns a guest's bus access
// (1, 2, 4 or 8 bytes, or longer), a register image or an encoded table field into a value and
// back, whatever the host's byte order.
//
// The span, not the type, gives the access width; the two need not agree, and what happens when
// they do not is part of the contract, because bus accesses of any width are decoded into a
// 32- or 64-bit register value:
//   - loadLe<T>(bytes) reads the first min(bytes.size(), sizeof(T)) bytes, byte i giving bits
//     8i..8i+7. A short span zero-extends (the missing high bytes read as zero; an empty span
//     reads 0); bytes past sizeof(T) in a long span are ignored.
//   - storeLe(bytes, value, fill) writes the low min(bytes.size(), sizeof(T)) bytes of `value`.
//     A short span truncates (the high bytes are dropped); the bytes of a long span past
//     sizeof(T) are set to `fill`: 0 by default (the value zero-extended to the span's width),
//     kAllOnes where an absent register or a floating bus reads as all ones.
// Both are constexpr and never touch a byte outside the span.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ember {

// An unsigned integer as stored in a register or table: uint8_t to uint64_t (bool is not one).
template <typename T>
concept LittleEndianValue = std::unsigned_integral<T> && !std::same_as<T, bool>;

// The fill for the bytes of a long span past the value, where they read as a floating bus does.
inline constexpr uint8_t kAllOnes = 0xff;

template <LittleEndianValue T>
constexpr T loadLe(std::span<const uint8_t> bytes) {
  const size_t n = bytes.size() < sizeof(T) ? bytes.size() : sizeof(T);
  T value = 0;
  for (size_t i = 0; i < n; ++i) {
    value = static_cast<T>(value | (static_cast<T>(bytes[i]) << (8 * i)));
  }
  return value;
}

template <LittleEndianValue T>
constexpr void storeLe(std::span<uint8_t> bytes, T value, uint8_t fill = 0) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = i < sizeof(T) ? static_cast<uint8_t>(value >> (8 * i)) : fill;
  }
}

}  // namespace ember
