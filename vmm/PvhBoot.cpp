// hvm_start_info construction.
#include "vmm/PvhBoot.h"

namespace ember::vmm {

using namespace layout;

Result<uint64_t> writePvhStartInfo(const GuestMemory& mem, const MemoryLayout& l,
                                   const std::string& cmdline,
                                   const std::vector<BootModule>& modules, uint64_t rsdp_addr) {
  if (cmdline.size() + 1 > kCmdlineMax) {
    return makeError(Errc::InvalidArgument, "command line is {} bytes; the limit is {}",
                     cmdline.size(), kCmdlineMax - 1);
  }
  EMBER_TRY(mem.write(GuestAddress(kCmdline),
                      std::span(reinterpret_cast<const uint8_t*>(cmdline.c_str()),  // chars
                                cmdline.size() + 1)));

  auto map = l.memoryMap();
  if (map.size() * sizeof(HvmMemmapEntry) > kPageTables - kPvhMemmap) {
    return makeError(Errc::OutOfRange, "memory map has too many entries");
  }
  for (size_t i = 0; i < map.size(); ++i) {
    HvmMemmapEntry e{map[i].addr, map[i].size, static_cast<uint32_t>(map[i].type), 0};
    EMBER_TRY(mem.writeObj(GuestAddress(kPvhMemmap + i * sizeof e), e));
  }

  if (modules.size() * sizeof(HvmModlistEntry) > kPvhMemmap - kPvhModlist) {
    return makeError(Errc::OutOfRange, "too many boot modules");
  }
  for (size_t i = 0; i < modules.size(); ++i) {
    HvmModlistEntry e{modules[i].addr, modules[i].size, 0, 0};
    EMBER_TRY(mem.writeObj(GuestAddress(kPvhModlist + i * sizeof e), e));
  }

  HvmStartInfo si{};
  si.magic = kHvmStartMagic;
  si.version = 1;
  si.nr_modules = static_cast<uint32_t>(modules.size());
  si.modlist_paddr = modules.empty() ? 0 : kPvhModlist;
  si.cmdline_paddr = kCmdline;
  si.rsdp_paddr = rsdp_addr;
  si.memmap_paddr = kPvhMemmap;
  si.memmap_entries = static_cast<uint32_t>(map.size());
  EMBER_TRY(mem.writeObj(GuestAddress(kPvhStartInfo), si));
  return kPvhStartInfo;
}

Result<uint64_t> placeHighModule(const GuestMemory& mem, const MemoryLayout& l,
                                 std::span<const uint8_t> data, uint64_t min_addr,
                                 uint64_t max_end) {
  uint64_t top = std::min(l.lowRamEnd(), max_end);
  uint64_t size = data.size();
  if (size > top || (top - size) / 4096 * 4096 < min_addr) {
    return makeError(Errc::OutOfRange,
                     "initrd of {} bytes does not fit in guest RAM between {:#x} and {:#x} (try "
                     "more --memory)",
                     size, min_addr, top);
  }
  uint64_t addr = (top - size) / 4096 * 4096;
  EMBER_TRY(mem.write(GuestAddress(addr), data));
  return addr;
}

}  // namespace ember::vmm
