// Loading ELF kernels: PVH (XEN_ELFNOTE_PHYS32_ENTRY) or a plain 64-bit ELF entry point.
//
// Parsing is separate from loading so that it can be tested and fuzzed on bytes alone. Every
// offset, size and address from the file is checked (with overflow-checked arithmetic) against
// the file and then against guest RAM before a byte is copied.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"

namespace ember::vmm {

struct ElfSegment {
  uint64_t file_offset;
  uint64_t file_size;
  uint64_t guest_addr;  // p_paddr
  uint64_t mem_size;
};

struct ElfImage {
  bool is64 = false;
  uint64_t entry = 0;                 // e_entry
  std::optional<uint32_t> pvh_entry;  // XEN_ELFNOTE_PHYS32_ENTRY
  std::vector<ElfSegment> segments;
  uint64_t lowest = 0, highest = 0;  // guest range covered by the segments
};

// Parses and validates the ELF headers, program headers and notes.
Result<ElfImage> parseElf(std::span<const uint8_t> file);
bool looksLikeElf(std::span<const uint8_t> file);

// Copies the segments into guest memory (zero-filling the .bss part). Segments must lie in RAM at
// or above `min_addr` (below it live the boot structures).
Result<void> loadElf(const ElfImage& image, std::span<const uint8_t> file, const GuestMemory& mem,
                     uint64_t min_addr);

// Reads a whole image file, refusing anything larger than `max_size`.
Result<std::vector<uint8_t>> readImageFile(const std::string& path, uint64_t max_size,
                                           const char* what);

}  // namespace ember::vmm
