// The encoder of saved state (a snapshot's sections, vmm/snapshot/StateFile.h): little-endian
// integers, booleans as one byte, and length-prefixed byte strings, appended to a buffer.
// StateReader decodes the same layout from untrusted bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ember {

class StateWriter {
 public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { le(v); }
  void u32(uint32_t v) { le(v); }
  void u64(uint64_t v) { le(v); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  // BYTES as they are, without a length: the reader must know how many to take.
  void raw(std::span<const uint8_t> bytes) { buf_.insert(buf_.end(), bytes.begin(), bytes.end()); }
  // A u32 length, then the bytes.
  void blob(std::span<const uint8_t> bytes);
  void string(std::string_view text);
  // A kernel structure (kvm_regs, kvm_lapic_state, ...) as a blob of its bytes: a snapshot is
  // restored on the same architecture, and the reader checks the size.
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  void object(const T& value) {
    blob(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof value));
  }

  const std::vector<uint8_t>& data() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  template <typename T>
  void le(T v) {
    for (size_t i = 0; i < sizeof v; ++i) buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> buf_;
};

}  // namespace ember
