// mmap() wrappers that report failures as typed errors.
#include "kvm/MemoryMapping.h"

namespace ember {

Result<MemoryMapping> MemoryMapping::anonymous(size_t size) {
  // A mapping of 2 MiB or more starts at a 2 MiB boundary. KVM maps guest memory with 2 MiB
  // entries only where the host backs it with a 2 MiB page and the guest-physical and the
  // host-virtual address agree modulo 2 MiB (guest RAM regions start 2 MiB-aligned); anywhere
  // else every 4 KiB page the guest touches is a nested page fault of its own. Where the kernel
  // uses transparent huge pages for such a mapping (`always` in
  // /sys/kernel/mm/transparent_hugepage/enabled, Debian's default kernel configuration), this
  // alignment is all it takes. The mapping is made kHugePage larger and trimmed at both ends.
  size_t extra = size >= kHugePage ? kHugePage : 0;
  void* p = ::mmap(nullptr, size + extra, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Error::fromErrno(Errc::Io, fmt::format("mmap of {} bytes of guest memory", size));
  }
  auto* base = static_cast<uint8_t*>(p);
  if (extra != 0) {
    auto addr = reinterpret_cast<uintptr_t>(base);
    size_t head = (kHugePage - addr % kHugePage) % kHugePage;
    if (head != 0) {
      ::munmap(base, head);
    }
    if (extra - head != 0) {
      ::munmap(base + head + size, extra - head);
    }
    base += head;
  }
  return MemoryMapping(base, size);
}

Result<MemoryMapping> MemoryMapping::ofFd(int fd, size_t size, int prot, uint64_t offset) {
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED | MAP_NORESERVE, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    return Error::fromErrno(Errc::Io, "mmap");
  }
  return MemoryMapping(p, size);
}

Result<MemoryMapping> MemoryMapping::privateOfFd(int fd, size_t size, uint64_t offset) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
                   static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    return Error::fromErrno(Errc::Io, "mmap of the memory file");
  }
  return MemoryMapping(p, size);
}

}  // namespace ember
