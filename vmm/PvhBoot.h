// The PVH boot protocol's start-of-day structure (Xen's hvm_start_info, version 1), which PVH
// kernels (Linux's vmlinux, our test guest) read from %ebx at their 32-bit entry point.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "vmm/MemoryLayout.h"

namespace ember::vmm {

// Layouts from xen/include/public/arch-x86/hvm/start_info.h.
struct HvmStartInfo {
  uint32_t magic;  // 0x336ec578 ("xEn3" with the top bit of each byte set)
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // version >= 1
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

constexpr uint32_t kHvmStartMagic = 0x336ec578;

struct BootModule {
  uint64_t addr;
  uint64_t size;
};

// Writes the command line, the memory map, the module list and the start_info structure to
// their fixed low-memory homes; returns the start_info address.
Result<uint64_t> writePvhStartInfo(const GuestMemory& mem, const MemoryLayout& layout,
                                   const std::string& cmdline,
                                   const std::vector<BootModule>& modules, uint64_t rsdp_addr);

// Places an initrd (or other module) as high as possible in low RAM, page aligned, at or below
// `max_end`, and above `min_addr`. Returns its address.
Result<uint64_t> placeHighModule(const GuestMemory& mem, const MemoryLayout& layout,
                                 std::span<const uint8_t> data, uint64_t min_addr,
                                 uint64_t max_end);

}  // namespace ember::vmm
