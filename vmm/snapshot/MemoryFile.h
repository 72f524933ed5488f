// A snapshot's memory file (PUT /snapshot/create's mem_file_path, issue 13): guest RAM as it was
// when the VM was paused, laid out so that a restore maps it straight from the file.
//
// Layout: a 4 KiB header page, then every RAM region's bytes one after another in address
// order, so that each region starts page-aligned in the file and mmap(MAP_PRIVATE) gives it to
// the restored guest, loaded lazily and copy-on-write. All-zero pages are left as holes (a
// guest's untouched RAM costs no disk). The header, little-endian:
//   0   magic "EMBERMEM"
//   8   format version (u32)
//   12  region count (u32), at most kMaxRegions
//   16  snapshot id (16 bytes): the state file names the memory file it goes with by this id
//   32  each region: start (u64), size (u64)
// The file is untrusted at restore: open() checks the magic, the version, that the id and the
// regions are the ones the state file expects, and that the file holds all of them (a file cut
// short would give the guest SIGBUS instead of RAM), each failure one line.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::vmm {

class MemoryFile {
 public:
  static constexpr std::array<char, 8> kMagic = {'E', 'M', 'B', 'E', 'R', 'M', 'E', 'M'};
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr uint64_t kHeaderBytes = 4096;
  static constexpr uint32_t kMaxRegions = 64;
  using Id = std::array<uint8_t, 16>;

  struct Written {
    uint64_t file_bytes = 0;  // the file's length
    uint64_t data_bytes = 0;  // of which written (the rest are holes)
  };
  // Writes MEMORY's regions to PATH whole or not at all: PATH.tmp, fdatasync, renamed to PATH.
  static Result<Written> write(const std::string& path, const GuestMemory& memory, const Id& id);

  // Opens PATH for a restore of a snapshot whose state file names ID and REGIONS: the fd, with
  // RAM at kHeaderBytes.
  static Result<UniqueFd> open(const std::string& path, const Id& id,
                               std::span<const GuestRegionSpec> regions);
};

}  // namespace ember::vmm
