// The decoder of saved state (StateWriter's layout) from bytes that are not trusted: a snapshot
// file can be tampered with. Every read is bounds-checked; the first one that fails records an
// error naming the section and the field, and every later read returns zero or an empty value,
// so a decoder reads its fields in a row and asks finish() once. finish() also refuses bytes
// left over. Lengths and counts are checked against a bound the caller gives.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "kvm/Result.h"

namespace ember {

class StateReader {
 public:
  // WHAT names the bytes in errors ("state file: section VCPU 1").
  StateReader(std::span<const uint8_t> bytes, std::string what)
      : bytes_(bytes), what_(std::move(what)) {}

  uint8_t u8(std::string_view field);
  uint16_t u16(std::string_view field);
  uint32_t u32(std::string_view field);
  uint64_t u64(std::string_view field);
  // One byte, 0 or 1.
  bool boolean(std::string_view field);
  // N bytes as they are (empty after an error).
  std::span<const uint8_t> raw(size_t n, std::string_view field);
  // A u32 length of at most MAX, then the bytes.
  std::span<const uint8_t> blob(std::string_view field, size_t max);
  std::string string(std::string_view field, size_t max);
  // A u32 count of at most MAX (of entries the caller then reads).
  uint32_t count(std::string_view field, uint32_t max);
  // A kernel structure written by StateWriter::object: its blob must be exactly sizeof(T).
  template <typename T>
  requires std::is_trivially_copyable_v<T> T object(std::string_view field) {
    T value{};
    auto b = blob(field, sizeof(T));
    if (ok() && b.size() != sizeof(T)) {
      failAt(field,
             fmt::format("is {} bytes, not the {} of this host's structure", b.size(), sizeof(T)));
    }
    if (ok()) std::memcpy(&value, b.data(), sizeof(T));
    return value;
  }

  // Records a value the decoder found wrong (out of range, inconsistent): the first error wins.
  void fail(std::string_view field, std::string_view why);

  bool ok() const { return !error_; }
  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }
  // The first error, or one for bytes left unread.
  Result<void> finish() const;
  // The first error, if any, for a decoder that must stop before acting on what it read (more
  // fields may follow).
  Result<void> status() const;

 private:
  // The next N bytes, or an empty span and the error "truncated".
  std::optional<std::span<const uint8_t>> take(size_t n, std::string_view field);
  void failAt(std::string_view field, std::string why);

  std::span<const uint8_t> bytes_;
  std::string what_;
  size_t offset_ = 0;
  std::optional<Error> error_;
};

}  // namespace ember
