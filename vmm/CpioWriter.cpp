// The newc cpio writer: name checks, implicit parent directories and the entry encoding of
// buffer-format.rst.
#include "vmm/CpioWriter.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "vmm/ElfLoader.h"

namespace ember::vmm {

namespace {

// buffer-format.rst: "070701" then 13 fields of 8 hex digits; the header is 110 bytes.
constexpr std::string_view kNewcMagic = "070701";
constexpr std::string_view kTrailerName = "TRAILER!!!";
constexpr uint32_t kPermissionBits = 07777;

// A directory's links: its entry in the parent and its own "." (what cpio writes for one without
// subdirectories; the kernel reads nlink only of regular files, to find hard links).
constexpr uint32_t kDirectoryLinks = 2;

void putHex8(std::vector<uint8_t>& out, uint32_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 28; shift >= 0; shift -= 4) {
    out.push_back(static_cast<uint8_t>(kDigits[(value >> shift) & 0xf]));
  }
}

const char* typeName(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "directory";
    case S_IFREG:
      return "file";
    case S_IFLNK:
      return "symlink";
    default:
      return "device node";
  }
}

// The archive's spelling of `path`: without its leading '/', every component checked.
Result<std::string> canonicalName(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) {
    return makeError(Errc::InvalidArgument, "initramfs path {:?} contains a NUL byte", path);
  }
  std::string_view rest = path;
  if (rest.starts_with('/')) {
    rest.remove_prefix(1);
  }
  if (rest.empty()) {
    return makeError(Errc::InvalidArgument,
                     "initramfs path {:?} names the root, which the unpacker provides", path);
  }
  for (size_t start = 0; start <= rest.size();) {
    size_t end = std::min(rest.find('/', start), rest.size());
    std::string_view component = rest.substr(start, end - start);
    if (component.empty() || component == "." || component == "..") {
      return makeError(Errc::InvalidArgument,
                       "initramfs path {:?} has an empty, \".\" or \"..\" component", path);
    }
    start = end + 1;
  }
  // The name and its NUL fill c_namesize; the kernel skips longer names.
  if (rest.size() + 1 > CpioWriter::kMaxNameSize) {
    return makeError(Errc::InvalidArgument, "initramfs path is {} bytes long; at most {} fit",
                     rest.size(), CpioWriter::kMaxNameSize - 1);
  }
  // An entry of this name ends the archive for every reader.
  if (rest == kTrailerName) {
    return makeError(Errc::InvalidArgument, "initramfs path {:?} is the archive's end marker",
                     path);
  }
  return std::string(rest);
}

}  // namespace

Result<std::string> CpioWriter::checkNewEntry(std::string_view path, uint32_t type,
                                              uint32_t permissions) const {
  if ((permissions & ~kPermissionBits) != 0) {
    return makeError(Errc::InvalidArgument,
                     "initramfs {} {:?}: mode {:#o} has bits beyond the permissions (07777)",
                     typeName(type), path, permissions);
  }
  std::string name = EMBER_TRY(canonicalName(path));
  if (auto it = modes_.find(name); it != modes_.end()) {
    if (type == S_IFDIR && (it->second & S_IFMT) == S_IFDIR) {
      return makeError(Errc::InvalidArgument,
                       "initramfs directory {:?} is already in the archive with mode {:#o}, not "
                       "{:#o} (add it before the entries below it)",
                       path, it->second & kPermissionBits, permissions);
    }
    return makeError(Errc::InvalidArgument, "initramfs path {:?} is already in the archive as a {}",
                     path, typeName(it->second));
  }
  for (size_t slash = name.find('/'); slash != std::string::npos;
       slash = name.find('/', slash + 1)) {
    auto it = modes_.find(name.substr(0, slash));
    if (it != modes_.end() && (it->second & S_IFMT) != S_IFDIR) {
      return makeError(Errc::InvalidArgument,
                       "initramfs path {:?}: its parent {:?} is a {}, not a directory", path,
                       name.substr(0, slash), typeName(it->second));
    }
  }
  return name;
}

void CpioWriter::addMissingParents(const std::string& name) {
  for (size_t slash = name.find('/'); slash != std::string::npos;
       slash = name.find('/', slash + 1)) {
    std::string parent = name.substr(0, slash);
    if (!modes_.contains(parent)) {
      writeEntry(parent, S_IFDIR | kImplicitDirectoryMode, {});
    }
  }
}

void CpioWriter::writeHeader(const std::string& name, uint32_t ino, uint32_t mode, uint32_t nlink,
                             uint32_t data_size, uint32_t rdev_major, uint32_t rdev_minor) {
  out_.insert(out_.end(), kNewcMagic.begin(), kNewcMagic.end());
  putHex8(out_, ino);                                     // c_ino
  putHex8(out_, mode);                                    // c_mode: file type and permissions
  putHex8(out_, 0);                                       // c_uid
  putHex8(out_, 0);                                       // c_gid
  putHex8(out_, nlink);                                   // c_nlink
  putHex8(out_, 0);                                       // c_mtime
  putHex8(out_, data_size);                               // c_filesize
  putHex8(out_, 0);                                       // c_maj: the device holding the file
  putHex8(out_, 0);                                       // c_min
  putHex8(out_, rdev_major);                              // c_rmaj: a device node's own number
  putHex8(out_, rdev_minor);                              // c_rmin
  putHex8(out_, static_cast<uint32_t>(name.size() + 1));  // c_namesize, with the NUL
  putHex8(out_, 0);  // c_chksum: 0 in "070701" archives (only "070702" carries a checksum)
  out_.insert(out_.end(), name.begin(), name.end());
  out_.push_back(0);
  padToFour();
}

void CpioWriter::padToFour() {
  // buffer-format.rst: header+name and data are each padded to a multiple of 4 bytes. The
  // archive starts 4-aligned (appendArchive keeps it so), so the offset within it is what counts.
  out_.resize((out_.size() + 3) & ~size_t{3}, 0);
}

void CpioWriter::writeEntry(const std::string& name, uint32_t mode, std::span<const uint8_t> data,
                            uint32_t rdev_major, uint32_t rdev_minor) {
  // Inode numbers are unique within the archive and nlink is 1 for everything but directories,
  // so init/initramfs.c never links one entry to another. Each entry takes well over 110 bytes,
  // so the 32-bit counter cannot wrap in an archive that fits in memory.
  uint32_t nlink = (mode & S_IFMT) == S_IFDIR ? kDirectoryLinks : 1;
  writeHeader(name, next_ino_++, mode, nlink, static_cast<uint32_t>(data.size()), rdev_major,
              rdev_minor);
  out_.insert(out_.end(), data.begin(), data.end());
  padToFour();
  modes_.emplace(name, mode);
}

Result<void> CpioWriter::addDirectory(std::string_view path, uint32_t mode) {
  // Asking again for a directory that is there as asked (even one made as a parent) is a no-op.
  if (auto name = canonicalName(path); name.ok() && (mode & ~kPermissionBits) == 0) {
    if (auto it = modes_.find(*name); it != modes_.end() && it->second == (S_IFDIR | mode)) {
      return {};
    }
  }
  std::string name = EMBER_TRY(checkNewEntry(path, S_IFDIR, mode));
  addMissingParents(name);
  writeEntry(name, S_IFDIR | mode, {});
  return {};
}

Result<void> CpioWriter::addFile(std::string_view path, uint32_t mode,
                                 std::span<const uint8_t> bytes) {
  std::string name = EMBER_TRY(checkNewEntry(path, S_IFREG, mode));
  if (bytes.size() > kMaxFileSize) {
    return makeError(Errc::OutOfRange, "initramfs file {:?} is {} bytes; newc holds at most {}",
                     path, bytes.size(), kMaxFileSize);
  }
  addMissingParents(name);
  writeEntry(name, S_IFREG | mode, bytes);
  return {};
}

Result<void> CpioWriter::addHostFile(std::string_view path, uint32_t mode,
                                     const std::string& host_path) {
  // Checked first, so that a bad name is reported before the host file is read.
  EMBER_TRY(checkNewEntry(path, S_IFREG, mode));
  auto bytes = EMBER_TRY(readImageFile(host_path, kMaxFileSize, "initramfs source file"));
  return addFile(path, mode, bytes);
}

Result<void> CpioWriter::addSymlink(std::string_view path, std::string_view target) {
  std::string name = EMBER_TRY(checkNewEntry(path, S_IFLNK, 0777));
  if (target.empty() || target.size() > kMaxSymlinkTarget ||
      target.find('\0') != std::string_view::npos) {
    return makeError(Errc::InvalidArgument,
                     "initramfs symlink {:?}: the target must be 1 to {} bytes without a NUL", path,
                     kMaxSymlinkTarget);
  }
  addMissingParents(name);
  // buffer-format.rst: a symlink's data is its target, without a terminating NUL.
  writeEntry(name, S_IFLNK | 0777,
             std::span(reinterpret_cast<const uint8_t*>(target.data()),  // the chars as bytes
                       target.size()));
  return {};
}

Result<void> CpioWriter::addCharDevice(std::string_view path, uint32_t mode, uint32_t major,
                                       uint32_t minor) {
  std::string name = EMBER_TRY(checkNewEntry(path, S_IFCHR, mode));
  addMissingParents(name);
  writeEntry(name, S_IFCHR | mode, {}, major, minor);
  return {};
}

std::vector<uint8_t> CpioWriter::finish() && {
  // buffer-format.rst: the archive ends with an entry named "TRAILER!!!"; GNU cpio writes it with
  // every field 0 but nlink (1) and namesize.
  writeHeader(std::string(kTrailerName), 0, 0, 1, 0, 0, 0);
  modes_.clear();
  next_ino_ = 1;
  return std::exchange(out_, {});
}

void appendArchive(std::vector<uint8_t>& image, std::span<const uint8_t> archive) {
  image.resize((image.size() + 3) & ~size_t{3}, 0);
  image.insert(image.end(), archive.begin(), archive.end());
}

}  // namespace ember::vmm
