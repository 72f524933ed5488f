// A cursor over a fuzzer's input bytes: typed reads that return zero once the input runs out,
// so that every input, however short, decodes to some sequence of operations.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace ember::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  T take() {
    T v{};
    size_t n = std::min(sizeof(T), remaining());
    std::memcpy(&v, data_ + pos_, n);
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> takeBytes(size_t n) {
    n = std::min(n, remaining());
    std::span<const uint8_t> s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const uint8_t> rest() { return takeBytes(remaining()); }
  std::string takeString(size_t max) {
    size_t n = std::min<size_t>(take<uint8_t>(), max);
    auto b = takeBytes(n);
    return std::string(b.begin(), b.end());
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace ember::fuzz
