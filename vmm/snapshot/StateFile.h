// A snapshot's state file (PUT /snapshot/create's snapshot_path): the machine's state as tagged
// sections, each encoded with StateWriter, in a container that says what it is and whether it
// is whole. Guest RAM goes to the separate memory file.
//
// Layout, little-endian:
//   0   magic "EMBERSTA"
//   8   format version (u32): kFormatVersion; a file of another version is refused
//   12  section count (u32), at most kMaxSections
//   16  the sections, each: tag (4 bytes of A-Z, 0-9), instance (u32: the vCPU's index, the
//       device's slot, ...), length (u64), then that many bytes
//   end-8  CRC-64/XZ (ECMA-182, as xz computes it: liblzma's lzma_crc64) of every byte before it
//
// The file is untrusted input when it is read (docs/security.md, "A snapshot file"): parse()
// checks the magic, the version, that the sections end exactly at the checksum (a file cut
// short says it is truncated), the checksum, the tags and that no (tag, instance) repeats, each
// failure one line naming the file and what is wrong. Decoding a section's fields is for its
// owner, with StateReader.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvm/Result.h"

namespace ember::vmm {

class StateFile {
 public:
  static constexpr std::array<char, 8> kMagic = {'E', 'M', 'B', 'E', 'R', 'S', 'T', 'A'};
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr uint32_t kMaxSections = 4096;
  // A state file holds registers and device state, not RAM: far below this.
  static constexpr uint64_t kMaxFileBytes = 64ull << 20;
  static constexpr size_t kHeaderBytes = 16, kSectionHeaderBytes = 16, kChecksumBytes = 8;

  struct Section {
    std::array<char, 4> tag;
    uint32_t instance = 0;
    std::vector<uint8_t> bytes;
    std::string name() const;  // "VCPU 1"
  };

  // Adds a section (writing). TAG is 4 characters of A-Z and 0-9; a (tag, instance) that is
  // there already is a programming error: refused.
  Result<void> add(std::string_view tag, uint32_t instance, std::vector<uint8_t> bytes);
  std::vector<uint8_t> serialize() const;
  // Writes the file whole or not at all: PATH.tmp, fsync, then renamed to PATH. Returns its
  // size in bytes.
  Result<uint64_t> write(const std::string& path) const;

  // WHAT names the bytes in errors (the path).
  static Result<StateFile> parse(std::span<const uint8_t> bytes, std::string_view what);
  static Result<StateFile> read(const std::string& path);

  // The section's bytes, or null.
  const std::vector<uint8_t>* find(std::string_view tag, uint32_t instance = 0) const;
  // How many sections carry TAG.
  size_t count(std::string_view tag) const;
  const std::vector<Section>& sections() const { return sections_; }

  // CRC-64/XZ of BYTES (liblzma).
  static uint64_t crc64(std::span<const uint8_t> bytes);

 private:
  std::vector<Section> sections_;
};

}  // namespace ember::vmm
