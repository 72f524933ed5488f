// RAII owner of an mmap()ed range (guest RAM, a vCPU's kvm_run page, an image file).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kvm/Result.h"

namespace ember {

class MemoryMapping {
 public:
  MemoryMapping() = default;
  static constexpr size_t kHugePage = size_t{2} << 20;
  // Anonymous, private-to-this-process, lazily backed memory (guest RAM); at a kHugePage boundary
  // when it is at least that large.
  static Result<MemoryMapping> anonymous(size_t size);
  // A shared mapping of `size` bytes of `fd` from `offset` (the vCPU's kvm_run structure; guest
  // RAM in a memfd that a vhost-user backend maps too).
  static Result<MemoryMapping> ofFd(int fd, size_t size, int prot, uint64_t offset = 0);
  // A private, copy-on-write, readable and writable mapping of a file (a snapshot's memory
  // file): pages are read from the file when first touched and written only to memory.
  static Result<MemoryMapping> privateOfFd(int fd, size_t size, uint64_t offset);

  ~MemoryMapping() { reset(); }
  MemoryMapping(MemoryMapping&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MemoryMapping& operator=(MemoryMapping&& o) noexcept {
    if (this != &o) {
      reset();
      addr_ = std::exchange(o.addr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  MemoryMapping(const MemoryMapping&) = delete;
  MemoryMapping& operator=(const MemoryMapping&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  MemoryMapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  void reset() {
    if (addr_ != nullptr) {
      ::munmap(addr_, size_);
      addr_ = nullptr;
      size_ = 0;
    }
  }
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ember
