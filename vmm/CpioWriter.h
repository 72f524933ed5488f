// Writing initramfs archives: the "newc" cpio format as the Linux kernel's initramfs unpacker
// reads it (Documentation/driver-api/early-userspace/buffer-format.rst).
//
// Each entry is a 110-byte ASCII header ("070701" and thirteen 8-digit hex fields), the NUL-
// terminated name padded with zeros so that header and name end on a 4-byte boundary, then the
// data (a file's bytes, a symlink's target) padded the same way; a "TRAILER!!!" entry ends the
// archive. Every entry is owned by root with mtime 0 and a fresh inode number, and has one link,
// so the kernel never takes two entries for hard links of one file. Names are canonical paths
// below the root: a leading '/' is dropped, and a NUL, an empty, "." or ".." component is
// refused, so that an archive only ever extracts under the directory it is unpacked in. A
// parent directory that was not added is created (mode 0755) before the first entry below it,
// once. An entry is checked completely before any byte of it is written, so a refused add leaves
// the archive as it was.
//
// The archive is built in memory: the initramfs ember assembles (guest init and kernel modules,
// tens of MiB) is loaded into guest RAM from memory anyway.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvm/Result.h"

namespace ember::vmm {

class CpioWriter {
 public:
  // The mode of a parent directory the archive creates because an entry below it was added first.
  static constexpr uint32_t kImplicitDirectoryMode = 0755;
  // buffer-format.rst leaves lengths to the unpacker: Linux's init/initramfs.c skips a name
  // longer than PATH_MAX (4096, the NUL included), and symlink(2) takes a target shorter than
  // PATH_MAX.
  static constexpr size_t kMaxNameSize = 4096;
  static constexpr size_t kMaxSymlinkTarget = 4095;
  // c_filesize is eight hex digits.
  static constexpr uint64_t kMaxFileSize = 0xffffffff;

  // A directory with permission bits `mode` (at most 07777). Adding a directory that is already
  // in the archive with the same mode does nothing; with another mode it is an error (add a
  // directory before the entries below it to give it a mode other than 0755).
  Result<void> addDirectory(std::string_view path, uint32_t mode);
  // A regular file holding `bytes`.
  Result<void> addFile(std::string_view path, uint32_t mode, std::span<const uint8_t> bytes);
  // A regular file holding a copy of the host's regular file `host_path` (read now).
  Result<void> addHostFile(std::string_view path, uint32_t mode, const std::string& host_path);
  // A symbolic link to `target` (kept as given: relative or absolute, resolved in the guest).
  Result<void> addSymlink(std::string_view path, std::string_view target);
  // A character device node (e.g. /dev/console, 5:1, which the kernel opens for init's stdio).
  Result<void> addCharDevice(std::string_view path, uint32_t mode, uint32_t major, uint32_t minor);

  // The archive's bytes so far (without the trailer).
  size_t size() const { return out_.size(); }

  // Appends the trailer and returns the archive; the writer is left empty.
  std::vector<uint8_t> finish() &&;

 private:
  // Validates `path` for a new entry of file type `type` (S_IFDIR, ...) and permission bits
  // `permissions`: the name's syntax, that it is not in the archive yet and that no parent is
  // other than a directory. Returns the name as the archive spells it.
  Result<std::string> checkNewEntry(std::string_view path, uint32_t type,
                                    uint32_t permissions) const;
  // Writes the directories above `name` that are not in the archive yet, outermost first.
  void addMissingParents(const std::string& name);
  // Writes one entry: header, name, data, each padded to 4 bytes. `mode` is type and permissions.
  void writeEntry(const std::string& name, uint32_t mode, std::span<const uint8_t> data,
                  uint32_t rdev_major = 0, uint32_t rdev_minor = 0);
  void writeHeader(const std::string& name, uint32_t ino, uint32_t mode, uint32_t nlink,
                   uint32_t data_size, uint32_t rdev_major, uint32_t rdev_minor);
  void padToFour();

  std::vector<uint8_t> out_;
  std::unordered_map<std::string, uint32_t> modes_;  // every name in the archive: its mode
  uint32_t next_ino_ = 1;                            // 0 is left to the trailer
};

// Appends an initramfs archive after an existing initrd image (a cpio archive, compressed or
// not). The image is first padded with zeros to a 4-byte boundary: Linux's unpacker
// (init/initramfs.c, unpack_to_rootfs) skips zero bytes between archives and starts an
// uncompressed one only at a 4-byte-aligned offset of the whole buffer; it unpacks every archive
// in turn, and a later entry replaces an earlier file of the same name.
void appendArchive(std::vector<uint8_t>& image, std::span<const uint8_t> archive);

}  // namespace ember::vmm
