// Bounds-checked decoding of saved state (see StateReader.h).
#include "kvm/StateReader.h"

#include "kvm/LittleEndian.h"

namespace ember {

void StateReader::failAt(std::string_view field, std::string why) {
  if (error_) return;
  error_ = Error{Errc::Format, fmt::format("{}: {} (at byte {}) {}", what_, field, offset_, why)};
}

void StateReader::fail(std::string_view field, std::string_view why) {
  failAt(field, std::string(why));
}

std::optional<std::span<const uint8_t>> StateReader::take(size_t n, std::string_view field) {
  if (error_) return std::nullopt;
  if (n > remaining()) {
    failAt(field,
           fmt::format("needs {} bytes, {} are left: the state is truncated", n, remaining()));
    return std::nullopt;
  }
  auto s = bytes_.subspan(offset_, n);
  offset_ += n;
  return s;
}

uint8_t StateReader::u8(std::string_view field) {
  auto s = take(1, field);
  return s ? (*s)[0] : 0;
}

uint16_t StateReader::u16(std::string_view field) {
  auto s = take(2, field);
  return s ? loadLe<uint16_t>(*s) : 0;
}

uint32_t StateReader::u32(std::string_view field) {
  auto s = take(4, field);
  return s ? loadLe<uint32_t>(*s) : 0;
}

uint64_t StateReader::u64(std::string_view field) {
  auto s = take(8, field);
  return s ? loadLe<uint64_t>(*s) : 0;
}

bool StateReader::boolean(std::string_view field) {
  uint8_t v = u8(field);
  if (v > 1) failAt(field, fmt::format("is {}, not a boolean (0 or 1)", v));
  return v == 1;
}

std::span<const uint8_t> StateReader::raw(size_t n, std::string_view field) {
  auto s = take(n, field);
  return s ? *s : std::span<const uint8_t>();
}

std::span<const uint8_t> StateReader::blob(std::string_view field, size_t max) {
  uint32_t n = u32(field);
  if (ok() && n > max) {
    failAt(field, fmt::format("has a length of {} bytes, more than the {} allowed", n, max));
  }
  return ok() ? raw(n, field) : std::span<const uint8_t>();
}

std::string StateReader::string(std::string_view field, size_t max) {
  auto b = blob(field, max);
  return std::string(b.begin(), b.end());
}

uint32_t StateReader::count(std::string_view field, uint32_t max) {
  uint32_t n = u32(field);
  if (ok() && n > max) failAt(field, fmt::format("is {}, more than the {} allowed", n, max));
  return ok() ? n : 0;
}

Result<void> StateReader::status() const {
  if (error_) return *error_;
  return okResult();
}

Result<void> StateReader::finish() const {
  if (error_) return *error_;
  if (remaining() != 0) {
    return makeError(Errc::Format, "{}: {} bytes are left over after its last field", what_,
                     remaining());
  }
  return okResult();
}

}  // namespace ember
