// Test-only reader of newc cpio archives (Documentation/driver-api/early-userspace/
// buffer-format.rst), strict where CpioWriter must be exact: the magic, eight hex digits per
// field, a zero checksum, a name whose only NUL is its last byte, zero padding of header+name
// and of data to 4-byte boundaries, and a "TRAILER!!!" entry at the end. It also reads archives
// laid one after another as Linux's unpacker does (init/initramfs.c): zero bytes between them
// are skipped, and each begins at a 4-byte-aligned offset of the whole buffer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvm/Result.h"

namespace ember::vmm::testing {

struct CpioEntry {
  size_t offset = 0;  // of the header, in the buffer read
  uint32_t ino = 0, mode = 0, uid = 0, gid = 0, nlink = 0, mtime = 0;
  uint32_t dev_major = 0, dev_minor = 0, rdev_major = 0, rdev_minor = 0;
  std::string name;
  std::vector<uint8_t> data;
};

struct CpioArchive {
  std::vector<CpioEntry> entries;  // without the trailer
  size_t end = 0;                  // offset just past the trailer's padded name
};

namespace detail {

inline Result<uint32_t> hexField(std::span<const uint8_t> bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    uint8_t c = bytes[at + i];
    uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return makeError(Errc::Format, "byte {:#x} at offset {} is not a hex digit", c, at + i);
    }
    v = v << 4 | digit;
  }
  return v;
}

inline Result<void> zeroPadding(std::span<const uint8_t> bytes, size_t from, size_t to) {
  if (to > bytes.size()) {
    return makeError(Errc::Format, "padding to offset {} runs past the end ({})", to, bytes.size());
  }
  for (size_t i = from; i < to; ++i) {
    if (bytes[i] != 0) {
      return makeError(Errc::Format, "padding byte at offset {} is {:#x}, not 0", i, bytes[i]);
    }
  }
  return {};
}

inline size_t alignFour(size_t v) {
  return (v + 3) & ~size_t{3};
}

}  // namespace detail

// Reads one archive that starts at `start` (which must be 4-aligned).
inline Result<CpioArchive> readCpioArchive(std::span<const uint8_t> bytes, size_t start = 0) {
  constexpr size_t kHeader = 110;
  if (start % 4 != 0) {
    return makeError(Errc::Format, "archive starts at offset {}, not 4-aligned", start);
  }
  CpioArchive archive;
  size_t at = start;
  for (;;) {
    if (bytes.size() < kHeader || at > bytes.size() - kHeader) {
      return makeError(Errc::Format, "no trailer: header at offset {} runs past the end", at);
    }
    if (std::string(bytes.begin() + at, bytes.begin() + at + 6) != "070701") {
      return makeError(Errc::Format, "no newc magic at offset {}", at);
    }
    uint32_t f[13];
    for (size_t i = 0; i < 13; ++i) f[i] = EMBER_TRY(detail::hexField(bytes, at + 6 + 8 * i));
    CpioEntry e;
    e.offset = at;
    e.ino = f[0];
    e.mode = f[1];
    e.uid = f[2];
    e.gid = f[3];
    e.nlink = f[4];
    e.mtime = f[5];
    uint32_t filesize = f[6];
    e.dev_major = f[7];
    e.dev_minor = f[8];
    e.rdev_major = f[9];
    e.rdev_minor = f[10];
    uint32_t namesize = f[11];
    if (f[12] != 0) {
      return makeError(Errc::Format, "entry at {} has a nonzero checksum", at);
    }
    size_t name_at = at + kHeader;
    if (namesize < 2 || name_at + namesize > bytes.size()) {
      return makeError(Errc::Format, "entry at {}: bad namesize {}", at, namesize);
    }
    e.name.assign(bytes.begin() + name_at, bytes.begin() + name_at + namesize - 1);
    if (bytes[name_at + namesize - 1] != 0 || e.name.find('\0') != std::string::npos) {
      return makeError(Errc::Format, "entry at {}: name is not one NUL-terminated string", at);
    }
    size_t data_at = detail::alignFour(name_at + namesize);
    EMBER_TRY(detail::zeroPadding(bytes, name_at + namesize, data_at));
    if (e.name == "TRAILER!!!") {
      if (filesize != 0) {
        return makeError(Errc::Format, "trailer at {} has data", at);
      }
      archive.end = data_at;
      return archive;
    }
    if (filesize > bytes.size() - data_at) {
      return makeError(Errc::Format, "entry {} at {}: data runs past the end", e.name, at);
    }
    e.data.assign(bytes.begin() + data_at, bytes.begin() + data_at + filesize);
    at = detail::alignFour(data_at + filesize);
    EMBER_TRY(detail::zeroPadding(bytes, data_at + filesize, at));
    archive.entries.push_back(std::move(e));
  }
}

// Reads every archive in `bytes`, uncompressed ones one after another, as the kernel does.
inline Result<std::vector<CpioArchive>> readConcatenatedArchives(std::span<const uint8_t> bytes) {
  std::vector<CpioArchive> archives;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes[at] == 0) {
      ++at;
      continue;
    }
    auto archive = EMBER_TRY(readCpioArchive(bytes, at));
    at = archive.end;
    archives.push_back(std::move(archive));
  }
  return archives;
}

}  // namespace ember::vmm::testing
