// ELF32/ELF64 parsing with the PVH entry note, and segment loading.
#include "vmm/ElfLoader.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "kvm/LittleEndian.h"
#include "kvm/UniqueFd.h"

namespace ember::vmm {

namespace {

// Xen's ELF note carrying the 32-bit physical entry point for PVH boot (xen/include/public/
// elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY = 18, owner "Xen").
constexpr uint32_t kXenElfNotePhys32Entry = 18;

bool rangeInFile(uint64_t offset, uint64_t size, size_t file_size) {
  uint64_t end = 0;
  return !__builtin_add_overflow(offset, size, &end) && end <= file_size;
}

template <typename T>
T readAt(std::span<const uint8_t> file, uint64_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof value);
  return value;
}

// Walks a PT_NOTE segment looking for the PVH entry note.
Result<std::optional<uint32_t>> findPvhNote(std::span<const uint8_t> file, uint64_t offset,
                                            uint64_t size) {
  uint64_t pos = offset;
  uint64_t end = offset + size;  // checked by the caller
  while (end - pos >= sizeof(Elf64_Nhdr)) {
    auto nh = readAt<Elf64_Nhdr>(file, pos);  // Elf32_Nhdr has the same layout
    uint64_t name_off = pos + sizeof nh;
    uint64_t name_len = (static_cast<uint64_t>(nh.n_namesz) + 3) & ~3ULL;
    uint64_t desc_off = name_off + name_len;
    uint64_t desc_len = (static_cast<uint64_t>(nh.n_descsz) + 3) & ~3ULL;
    if (desc_off > end || desc_len > end - desc_off) {
      return makeError(Errc::Format, "ELF note at offset {:#x} runs past its segment", pos);
    }
    if (nh.n_type == kXenElfNotePhys32Entry && nh.n_namesz == 4 &&
        std::memcmp(file.data() + name_off, "Xen", 4) == 0) {
      if (nh.n_descsz != 4 && nh.n_descsz != 8) {
        return makeError(Errc::Format, "PVH entry note has a {}-byte value (expected 4 or 8)",
                         nh.n_descsz);
      }
      // A 4-byte value zero-extends.
      uint64_t entry = loadLe<uint64_t>(file.subspan(desc_off, nh.n_descsz));
      if (entry > UINT32_MAX) {
        return makeError(Errc::Format, "PVH entry point {:#x} is above 4 GiB", entry);
      }
      return std::optional<uint32_t>(static_cast<uint32_t>(entry));
    }
    pos = desc_off + desc_len;
  }
  return std::optional<uint32_t>();
}

template <typename Ehdr, typename Phdr>
Result<ElfImage> parseClass(std::span<const uint8_t> file, bool is64) {
  if (file.size() < sizeof(Ehdr)) {
    return makeError(Errc::Format, "ELF file is truncated ({} bytes, header needs {})", file.size(),
                     sizeof(Ehdr));
  }
  auto eh = readAt<Ehdr>(file, 0);
  if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_386) {
    return makeError(Errc::Format, "ELF machine {} is not x86", eh.e_machine);
  }
  if (eh.e_type != ET_EXEC) {
    return makeError(Errc::Format, "ELF type {} is not an executable", eh.e_type);
  }
  if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(Phdr)) {
    return makeError(Errc::Format, "ELF has no usable program headers");
  }
  uint64_t ph_bytes = static_cast<uint64_t>(eh.e_phnum) * sizeof(Phdr);
  if (!rangeInFile(eh.e_phoff, ph_bytes, file.size())) {
    return makeError(Errc::Format, "ELF program headers lie outside the file");
  }
  ElfImage image;
  image.is64 = is64;
  image.entry = eh.e_entry;
  image.lowest = UINT64_MAX;
  for (uint64_t i = 0; i < eh.e_phnum; ++i) {
    auto ph = readAt<Phdr>(file, eh.e_phoff + i * sizeof(Phdr));
    if (ph.p_type == PT_NOTE) {
      if (!rangeInFile(ph.p_offset, ph.p_filesz, file.size())) {
        return makeError(Errc::Format, "ELF note segment lies outside the file");
      }
      auto note = EMBER_TRY(findPvhNote(file, ph.p_offset, ph.p_filesz));
      if (note && !image.pvh_entry) {
        image.pvh_entry = note;
      }
    } else if (ph.p_type == PT_LOAD) {
      if (!rangeInFile(ph.p_offset, ph.p_filesz, file.size())) {
        return makeError(Errc::Format,
                         "ELF segment {} (offset {:#x}, size {:#x}) lies outside "
                         "the {}-byte file",
                         i, static_cast<uint64_t>(ph.p_offset), static_cast<uint64_t>(ph.p_filesz),
                         file.size());
      }
      if (ph.p_filesz > ph.p_memsz) {
        return makeError(Errc::Format, "ELF segment {} has file size above memory size", i);
      }
      uint64_t end = 0;
      if (__builtin_add_overflow(static_cast<uint64_t>(ph.p_paddr),
                                 static_cast<uint64_t>(ph.p_memsz), &end)) {
        return makeError(Errc::Format, "ELF segment {} address range overflows", i);
      }
      if (ph.p_memsz == 0) {
        continue;
      }
      image.segments.push_back({ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz});
      image.lowest = std::min<uint64_t>(image.lowest, ph.p_paddr);
      image.highest = std::max(image.highest, end);
    }
  }
  if (image.segments.empty()) {
    return makeError(Errc::Format, "ELF has no loadable segments");
  }
  if (!image.pvh_entry && !is64) {
    return makeError(Errc::Format,
                     "32-bit ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) cannot be "
                     "booted");
  }
  return image;
}

}  // namespace

bool looksLikeElf(std::span<const uint8_t> file) {
  return file.size() >= SELFMAG && std::memcmp(file.data(), ELFMAG, SELFMAG) == 0;
}

Result<ElfImage> parseElf(std::span<const uint8_t> file) {
  if (file.size() < EI_NIDENT || !looksLikeElf(file)) {
    return makeError(Errc::Format, "not an ELF file");
  }
  if (file[EI_DATA] != ELFDATA2LSB) {
    return makeError(Errc::Format, "ELF file is not little-endian");
  }
  switch (file[EI_CLASS]) {
    case ELFCLASS64:
      return parseClass<Elf64_Ehdr, Elf64_Phdr>(file, true);
    case ELFCLASS32:
      return parseClass<Elf32_Ehdr, Elf32_Phdr>(file, false);
    default:
      return makeError(Errc::Format, "ELF class {} is neither 32- nor 64-bit", file[EI_CLASS]);
  }
}

Result<void> loadElf(const ElfImage& image, std::span<const uint8_t> file, const GuestMemory& mem,
                     uint64_t min_addr) {
  for (const auto& seg : image.segments) {
    if (seg.guest_addr < min_addr || !mem.contains(GuestAddress(seg.guest_addr), seg.mem_size)) {
      return makeError(Errc::OutOfRange,
                       "kernel segment {:#x}+{:#x} does not fit in guest RAM above {:#x} (try "
                       "more --memory)",
                       seg.guest_addr, seg.mem_size, min_addr);
    }
    EMBER_TRY(
        mem.write(GuestAddress(seg.guest_addr), file.subspan(seg.file_offset, seg.file_size)));
    EMBER_TRY(
        mem.fill(GuestAddress(seg.guest_addr + seg.file_size), 0, seg.mem_size - seg.file_size));
  }
  return {};
}

Result<std::vector<uint8_t>> readImageFile(const std::string& path, uint64_t max_size,
                                           const char* what) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below as not a
  // regular file); reads of regular files are unaffected by the flag.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    return Error{err == ENOENT ? Errc::NotFound : Errc::Io,
                 fmt::format("cannot open {} {}: {}", what, path, std::strerror(err)), err};
  }
  UniqueFd file(fd);
  struct stat st {};
  if (::fstat(fd, &st) < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("stat {}", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError(Errc::InvalidArgument, "{} {} is not a regular file", what, path);
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return makeError(Errc::OutOfRange, "{} {} is {} bytes, larger than the {} bytes allowed", what,
                     path, st.st_size, max_size);
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return Error::fromErrno(Errc::Io, fmt::format("read {}", path));
    }
    if (n == 0) {
      bytes.resize(done);  // the file shrank while we read it
      break;
    }
    done += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace ember::vmm
