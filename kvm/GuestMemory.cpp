// Bounds-checked access to guest RAM.
#include "kvm/GuestMemory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace ember {

namespace {
constexpr uint64_t kPageSize = 4096;
}

namespace {
// The regions sorted by address, each page-aligned, non-empty, not overflowing and not
// overlapping the next.
Result<std::vector<GuestRegionSpec>> sortedSpecs(std::span<const GuestRegionSpec> specs) {
  std::vector<GuestRegionSpec> sorted(specs.begin(), specs.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  uint64_t prev_end = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& s = sorted[i];
    if (s.size == 0 || s.start.raw % kPageSize != 0 || s.size % kPageSize != 0) {
      return makeError(Errc::InvalidArgument,
                       "guest memory region {:#x}+{:#x} is empty or not page-aligned", s.start.raw,
                       s.size);
    }
    if (!s.start.checkedAdd(s.size)) {
      return makeError(Errc::InvalidArgument, "guest memory region {:#x}+{:#x} overflows",
                       s.start.raw, s.size);
    }
    if (i > 0 && s.start.raw < prev_end) {
      return makeError(Errc::InvalidArgument, "guest memory regions overlap at {:#x}", s.start.raw);
    }
    prev_end = s.start.raw + s.size;
  }
  return sorted;
}
}  // namespace

Result<GuestMemory> GuestMemory::create(std::span<const GuestRegionSpec> specs,
                                        MemoryBacking backing) {
  auto sorted = EMBER_TRY(sortedSpecs(specs));
  GuestMemory mem;
  if (backing == MemoryBacking::SharedMemfd) {
    uint64_t total = 0;
    for (const auto& s : sorted) {
      if (__builtin_add_overflow(total, s.size, &total)) {
        return makeError(Errc::InvalidArgument, "guest memory size overflows");
      }
    }
    mem.memfd_.reset(::memfd_create("ember-guest-ram", MFD_CLOEXEC));
    if (!mem.memfd_.valid()) {
      return Error::fromErrno(Errc::Io, "memfd_create for guest memory");
    }
    if (::ftruncate(mem.memfd_.get(), static_cast<off_t>(total)) != 0) {
      return Error::fromErrno(Errc::Io, fmt::format("ftruncate of the {}-byte guest memfd", total));
    }
  }
  uint64_t fd_offset = 0;
  for (const auto& s : sorted) {
    if (backing == MemoryBacking::SharedMemfd) {
      auto mapping = EMBER_TRY(
          MemoryMapping::ofFd(mem.memfd_.get(), s.size, PROT_READ | PROT_WRITE, fd_offset));
      mem.regions_.push_back(Region{s.start, s.size, std::move(mapping), fd_offset});
      fd_offset += s.size;
    } else {
      auto mapping = EMBER_TRY(MemoryMapping::anonymous(s.size));
      mem.regions_.push_back(Region{s.start, s.size, std::move(mapping)});
    }
  }
  return mem;
}

Result<GuestMemory> GuestMemory::mapFile(std::span<const GuestRegionSpec> specs, int fd,
                                         uint64_t offset) {
  auto sorted = EMBER_TRY(sortedSpecs(specs));
  if (offset % kPageSize != 0) {
    return makeError(Errc::InvalidArgument, "memory file offset {:#x} is not page-aligned", offset);
  }
  GuestMemory mem;
  for (const auto& s : sorted) {
    auto mapping = EMBER_TRY(MemoryMapping::privateOfFd(fd, s.size, offset));
    mem.regions_.push_back(Region{s.start, s.size, std::move(mapping)});
    offset += s.size;
  }
  return mem;
}

uint64_t GuestMemory::totalSize() const {
  uint64_t total = 0;
  for (const auto& r : regions_) {
    total += r.size;
  }
  return total;
}

const GuestMemory::Region* GuestMemory::find(GuestAddress addr) const {
  for (const auto& r : regions_) {
    if (addr >= r.start && addr.raw - r.start.raw < r.size) {
      return &r;
    }
  }
  return nullptr;
}

bool GuestMemory::contains(GuestAddress addr, uint64_t len) const {
  if (!addr.checkedAdd(len)) {
    return false;
  }
  while (len > 0) {
    const Region* r = find(addr);
    if (r == nullptr) {
      return false;
    }
    uint64_t chunk = std::min(len, r->end() - addr.raw);
    addr = GuestAddress(addr.raw + chunk);
    len -= chunk;
  }
  return true;
}

Result<std::span<uint8_t>> GuestMemory::slice(GuestAddress addr, uint64_t len) const {
  const Region* r = find(addr);
  if (r == nullptr || len > r->end() - addr.raw) {
    return makeError(Errc::OutOfRange, "guest range {:#x}+{:#x} is not inside one RAM region",
                     addr.raw, len);
  }
  return std::span<uint8_t>(r->mapping.data() + (addr.raw - r->start.raw), len);
}

Result<void> GuestMemory::toIovecs(GuestAddress addr, uint64_t len, std::vector<iovec>& out) const {
  if (!addr.checkedAdd(len)) {
    return makeError(Errc::OutOfRange, "guest range {:#x}+{:#x} overflows", addr.raw, len);
  }
  size_t first = out.size();
  while (len > 0) {
    const Region* r = find(addr);
    if (r == nullptr) {
      out.resize(first);
      return makeError(Errc::OutOfRange, "guest range {:#x}+{:#x} is outside RAM", addr.raw, len);
    }
    uint64_t chunk = std::min(len, r->end() - addr.raw);
    out.push_back(iovec{r->mapping.data() + (addr.raw - r->start.raw), chunk});
    addr = GuestAddress(addr.raw + chunk);
    len -= chunk;
  }
  return {};
}

Result<void> GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
  if (!contains(addr, out.size())) {
    return makeError(Errc::OutOfRange, "guest read {:#x}+{:#x} is outside RAM", addr.raw,
                     out.size());
  }
  size_t done = 0;
  while (done < out.size()) {
    GuestAddress a(addr.raw + done);
    const Region* r = find(a);
    size_t chunk = std::min<uint64_t>(out.size() - done, r->end() - a.raw);
    std::memcpy(out.data() + done, r->mapping.data() + (a.raw - r->start.raw), chunk);
    done += chunk;
  }
  return {};
}

Result<void> GuestMemory::write(GuestAddress addr, std::span<const uint8_t> in) const {
  if (!contains(addr, in.size())) {
    return makeError(Errc::OutOfRange, "guest write {:#x}+{:#x} is outside RAM", addr.raw,
                     in.size());
  }
  size_t done = 0;
  while (done < in.size()) {
    GuestAddress a(addr.raw + done);
    const Region* r = find(a);
    size_t chunk = std::min<uint64_t>(in.size() - done, r->end() - a.raw);
    std::memcpy(r->mapping.data() + (a.raw - r->start.raw), in.data() + done, chunk);
    done += chunk;
  }
  return {};
}

Result<void> GuestMemory::fill(GuestAddress addr, uint8_t value, uint64_t len) const {
  if (!contains(addr, len)) {
    return makeError(Errc::OutOfRange, "guest fill {:#x}+{:#x} is outside RAM", addr.raw, len);
  }
  uint64_t done = 0;
  while (done < len) {
    GuestAddress a(addr.raw + done);
    const Region* r = find(a);
    uint64_t chunk = std::min(len - done, r->end() - a.raw);
    uint8_t* p = r->mapping.data() + (a.raw - r->start.raw);
    // Zeroing whole pages: drop them instead (private anonymous memory reads back as zeroes),
    // which costs nothing for pages never touched, e.g. a kernel's .bss in fresh guest RAM.
    uint64_t head = (kPageSize - a.raw % kPageSize) % kPageSize;
    if (value == 0 && chunk >= head + kPageSize) {
      uint64_t pages = (chunk - head) / kPageSize * kPageSize;
      std::memset(p, 0, head);
      if (::madvise(p + head, pages, MADV_DONTNEED) != 0) {
        std::memset(p + head, 0, pages);
      }
      std::memset(p + head + pages, 0, chunk - head - pages);
    } else {
      std::memset(p, value, chunk);
    }
    done += chunk;
  }
  return {};
}

namespace {
template <typename T>
Result<T*> alignedField(const GuestMemory& mem, GuestAddress addr) {
  if (addr.raw % sizeof(T) != 0) {
    return makeError(Errc::OutOfRange, "guest field at {:#x} is not {}-byte aligned", addr.raw,
                     sizeof(T));
  }
  auto s = EMBER_TRY(mem.slice(addr, sizeof(T)));
  // The slice is inside one mapping and naturally aligned, so it is a valid T object location.
  return reinterpret_cast<T*>(s.data());
}
}  // namespace

Result<uint16_t> GuestMemory::loadU16Acquire(GuestAddress addr) const {
  uint16_t* p = EMBER_TRY(alignedField<uint16_t>(*this, addr));
  return std::atomic_ref<uint16_t>(*p).load(std::memory_order_acquire);
}

Result<void> GuestMemory::storeU16Release(GuestAddress addr, uint16_t value) const {
  uint16_t* p = EMBER_TRY(alignedField<uint16_t>(*this, addr));
  std::atomic_ref<uint16_t>(*p).store(value, std::memory_order_release);
  return {};
}

Result<uint32_t> GuestMemory::loadU32Acquire(GuestAddress addr) const {
  uint32_t* p = EMBER_TRY(alignedField<uint32_t>(*this, addr));
  return std::atomic_ref<uint32_t>(*p).load(std::memory_order_acquire);
}

Result<void> GuestMemory::discard(GuestAddress addr, uint64_t len) const {
  if (addr.raw % kPageSize != 0 || len % kPageSize != 0) {
    return makeError(Errc::InvalidArgument, "discard {:#x}+{:#x} is not page-aligned", addr.raw,
                     len);
  }
  auto s = EMBER_TRY(slice(addr, len));
  // Shared memfd pages are freed with MADV_REMOVE (a hole punched in the memfd: the backend's
  // mapping sees zeroes too); MADV_DONTNEED would only drop ember's own page-table entries.
  int advice = memfd_.valid() ? MADV_REMOVE : MADV_DONTNEED;
  if (::madvise(s.data(), s.size(), advice) != 0) {
    return Error::fromErrno(Errc::Io,
                            memfd_.valid() ? "madvise(MADV_REMOVE)" : "madvise(MADV_DONTNEED)");
  }
  return {};
}

}  // namespace ember
