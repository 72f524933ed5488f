// mmap() wrappers that report failures as typed errors.
#include "kvm/MemoryMapping.h"

namespace ember {

Result<MemoryMapping> MemoryMapping::anonymous(size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Error::fromErrno(Errc::Io, fmt::format("mmap of {} bytes of guest memory", size));
  }
  return MemoryMapping(p, size);
}

Result<MemoryMapping> MemoryMapping::ofFd(int fd, size_t size, int prot, uint64_t offset) {
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED | MAP_NORESERVE, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    return Error::fromErrno(Errc::Io, "mmap");
  }
  return MemoryMapping(p, size);
}

}  // namespace ember
