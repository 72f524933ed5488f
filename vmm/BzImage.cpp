// bzImage parsing (setup header validation) and loading (kernel copy, initrd, zero page).
#include "vmm/BzImage.h"

#include <algorithm>
#include <cstring>

#include "kvm/LittleEndian.h"
#include "vmm/PvhBoot.h"

namespace ember::vmm {

using namespace bzimage;

namespace {

constexpr uint64_t kBootFlagOffset = offsetof(BootParams, hdr) + offsetof(SetupHeader, boot_flag);
constexpr uint64_t kMagicEnd =
    offsetof(BootParams, hdr) + offsetof(SetupHeader, header) + sizeof(uint32_t);
constexpr uint64_t kVersionEnd =
    offsetof(BootParams, hdr) + offsetof(SetupHeader, version) + sizeof(uint16_t);
constexpr uint64_t kJumpOffsetByte = offsetof(BootParams, hdr) + offsetof(SetupHeader, jump) + 1;
constexpr uint64_t kHeaderStart = kSetupHeaderOffset;
constexpr uint64_t kHeaderFullEnd = kSetupHeaderOffset + sizeof(SetupHeader);
// zero-page.rst: the header may grow up to edd_mbr_sig_buffer at 0x290 in boot_params.
constexpr uint64_t kZeroPageHeaderEnd = offsetof(BootParams, edd_mbr_sig_buffer);
// The last field a protocol 2.10 header must hold for us: init_size.
constexpr uint64_t kInitSizeEnd =
    kSetupHeaderOffset + offsetof(SetupHeader, init_size) + sizeof(uint32_t);

bool isPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// `v` is below 4 GiB here (an end inside low RAM), so this cannot overflow.
uint64_t alignUp4K(uint64_t v) {
  return (v + 0xfff) & ~uint64_t{0xfff};
}

}  // namespace

bool looksLikeBzImage(std::span<const uint8_t> file) {
  // boot.rst: boot_flag (0x1fe) is 0xaa55 and header (0x202) is "HdrS" for protocol 2.00+.
  return file.size() >= kMagicEnd &&
         loadLe<uint16_t>(file.subspan(kBootFlagOffset, 2)) == kBootFlag &&
         loadLe<uint32_t>(file.subspan(kMagicEnd - 4, 4)) == kHeaderMagic;
}

Result<BzImage> parseBzImage(std::span<const uint8_t> file) {
  if (file.size() < kMagicEnd) {
    return makeError(Errc::Format, "not a bzImage: {} bytes is too short for a setup header",
                     file.size());
  }
  if (!looksLikeBzImage(file)) {
    return makeError(Errc::Format, "not a bzImage (no 0xaa55 boot flag and \"HdrS\" magic)");
  }
  if (file.size() < kVersionEnd) {
    return makeError(Errc::Format, "bzImage is truncated inside its setup header");
  }
  uint16_t version = loadLe<uint16_t>(file.subspan(kVersionEnd - 2, 2));
  if (version < kMinVersion) {
    return makeError(Errc::Unsupported,
                     "bzImage boot protocol {}.{:02} is too old; {}.{:02} or newer is needed",
                     version >> 8, version & 0xff, kMinVersion >> 8, kMinVersion & 0xff);
  }
  // boot.rst ("the jump instruction"): the header ends at 0x202 plus the byte at 0x201.
  uint64_t header_end = 0x202 + uint64_t{file[kJumpOffsetByte]};
  if (header_end < kInitSizeEnd) {
    return makeError(Errc::Format,
                     "bzImage setup header ends at {:#x}, before the protocol {}.{:02} fields",
                     header_end, version >> 8, version & 0xff);
  }
  // boot.rst, setup_sects: the number of 512-byte setup sectors after the boot sector;
  // 0 means 4 for compatibility.
  uint8_t sects = file[kSetupHeaderOffset];
  uint64_t setup_size = (uint64_t{sects == 0 ? kDefaultSetupSects : sects} + 1) * kSectorSize;
  if (header_end > setup_size) {
    return makeError(Errc::Format, "bzImage setup header ends at {:#x}, past the {}-byte setup",
                     header_end, setup_size);
  }
  if (file.size() < setup_size) {
    return makeError(Errc::Format, "bzImage is truncated: its setup claims {} bytes, file has {}",
                     setup_size, file.size());
  }

  BzImage image{};
  std::memcpy(&image.header, file.data() + kHeaderStart,
              std::min(header_end, kHeaderFullEnd) - kHeaderStart);
  const SetupHeader& h = image.header;
  image.setup_size = setup_size;
  image.header_end = header_end;
  image.kernel_offset = setup_size;
  image.kernel_size = file.size() - setup_size;

  // boot.rst, loadflags bit 0 (LOADED_HIGH): the protected-mode code is loaded at 1 MiB or above.
  if ((h.loadflags & kLoadedHigh) == 0) {
    return makeError(Errc::Unsupported, "bzImage is not a high-loading (LOADED_HIGH) kernel");
  }
  // boot.rst, xloadflags bit 0 (XLF_KERNEL_64, protocol 2.12+): a 64-bit entry point at +0x200.
  uint16_t xloadflags = version >= kXloadflagsVersion ? h.xloadflags : 0;
  if ((xloadflags & kXlfKernel64) == 0) {
    return makeError(Errc::Unsupported,
                     "bzImage (protocol {}.{:02}) has no 64-bit entry point (XLF_KERNEL_64)",
                     version >> 8, version & 0xff);
  }
  // boot.rst, syssize (32 bits since 2.04): the protected-mode code in 16-byte paragraphs.
  uint64_t claimed = uint64_t{h.syssize} * 16;
  if (image.kernel_size == 0 || claimed > image.kernel_size) {
    return makeError(Errc::Format,
                     "bzImage is truncated: syssize claims {} bytes of kernel, file has {}",
                     claimed, image.kernel_size);
  }
  // boot.rst, relocatable_kernel and kernel_alignment (2.05+).
  image.relocatable = h.relocatable_kernel != 0;
  if (image.relocatable && !isPowerOfTwo(h.kernel_alignment)) {
    return makeError(Errc::Format, "bzImage kernel_alignment {:#x} is not a power of two",
                     h.kernel_alignment);
  }
  // boot.rst, init_size (2.10+): the linear memory the kernel needs from its load address to
  // decompress and start; never less than what the file itself occupies.
  image.init_size = std::max<uint64_t>(h.init_size, image.kernel_size);
  return image;
}

Result<LoadedBzImage> loadBzImage(const BzImage& image, std::span<const uint8_t> file,
                                  const GuestMemory& mem, const MemoryLayout& layout,
                                  const BzImageBootOptions& options) {
  const SetupHeader& h = image.header;
  if (image.kernel_offset > file.size() || file.size() - image.kernel_offset != image.kernel_size) {
    return makeError(Errc::InvalidArgument, "bzImage bytes do not match the parsed image");
  }
  const uint64_t ram_end = layout.lowRamEnd();
  auto fits = [&](uint64_t addr) {
    uint64_t end = 0;
    return addr >= layout::kHighMemoryStart &&
           !__builtin_add_overflow(addr, image.init_size, &end) && end <= ram_end;
  };
  // boot.rst, pref_address (2.10+): a relocatable kernel is best loaded there (suitably aligned);
  // otherwise the traditional 1 MiB, from where a non-relocatable kernel moves itself.
  uint64_t load = kDefaultLoadAddress;
  if (image.relocatable && h.pref_address % h.kernel_alignment == 0 && fits(h.pref_address)) {
    load = h.pref_address;
  } else if (!fits(load)) {
    return makeError(Errc::OutOfRange,
                     "kernel needs {} MiB of RAM from {:#x} (init_size), guest low RAM ends at "
                     "{:#x} (try more --memory)",
                     (image.init_size + layout::MiB - 1) / layout::MiB, load, ram_end);
  }
  const uint64_t kernel_end = load + image.init_size;  // checked by fits()

  // Everything is checked before the first byte is written.
  // boot.rst, cmd_line_ptr (2.02+) and cmdline_size (2.06+): the maximum length without the NUL.
  uint64_t cmdline_max = std::min<uint64_t>(h.cmdline_size, layout::kCmdlineMax - 1);
  if (options.cmdline.size() > cmdline_max) {
    return makeError(Errc::InvalidArgument,
                     "command line is {} bytes; this kernel accepts at most {}",
                     options.cmdline.size(), cmdline_max);
  }
  // boot.rst, initrd_addr_max (2.03+): the highest address the initrd may occupy; 0 in kernels
  // that predate the field means 0x37ffffff. The initrd goes as high as allowed in low RAM, and
  // above everything the kernel needs (init_size from its load address).
  uint64_t addr_max = h.initrd_addr_max != 0 ? h.initrd_addr_max : 0x37ffffff;
  uint64_t initrd_max_end = std::min(addr_max + 1, ram_end);
  uint64_t initrd_min = alignUp4K(kernel_end);
  if (!options.initrd.empty() && (options.initrd.size() > initrd_max_end ||
                                  initrd_max_end - options.initrd.size() < initrd_min)) {
    return makeError(Errc::OutOfRange,
                     "initrd of {} bytes does not fit between the kernel's end {:#x} and {:#x} "
                     "(the kernel's initrd_addr_max or the end of low RAM; try more --memory)",
                     options.initrd.size(), initrd_min, initrd_max_end);
  }
  auto map = layout.memoryMap();
  if (map.size() > kBootE820MaxEntries) {
    return makeError(Errc::OutOfRange, "memory map has {} entries; boot_params holds {}",
                     map.size(), kBootE820MaxEntries);
  }

  EMBER_TRY(mem.write(GuestAddress(load), file.subspan(image.kernel_offset, image.kernel_size)));
  std::vector<uint8_t> cmdline(options.cmdline.begin(), options.cmdline.end());
  cmdline.push_back(0);
  EMBER_TRY(mem.write(GuestAddress(layout::kCmdline), cmdline));
  LoadedBzImage loaded;
  loaded.load_address = load;
  loaded.entry64 = load + kEntry64Offset;
  loaded.boot_params = layout::kBootParams;
  if (!options.initrd.empty()) {
    loaded.initrd_address =
        EMBER_TRY(placeHighModule(mem, layout, options.initrd, initrd_min, initrd_max_end));
    loaded.initrd_size = options.initrd.size();
  }

  // zero-page.rst: everything Ember does not fill in stays zero, including the sentinel at
  // 0x1ef. boot.rst ("Details of header fields"): copy the setup header from the image, up to
  // the end the jump byte gives, then fill in the fields a boot loader writes.
  BootParams bp{};
  auto* page = reinterpret_cast<uint8_t*>(&bp);  // the zero page as bytes, to copy the header in
  std::memcpy(page + kHeaderStart, file.data() + kHeaderStart,
              std::min(image.header_end, kZeroPageHeaderEnd) - kHeaderStart);
  bp.hdr.type_of_loader = kTypeOfLoaderUndefined;  // boot.rst, type_of_loader: 0xff, no ID
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdline);
  bp.ext_cmd_line_ptr = static_cast<uint32_t>(layout::kCmdline >> 32);
  bp.hdr.ramdisk_image = static_cast<uint32_t>(loaded.initrd_address);
  bp.ext_ramdisk_image = static_cast<uint32_t>(loaded.initrd_address >> 32);
  bp.hdr.ramdisk_size = static_cast<uint32_t>(loaded.initrd_size);
  bp.ext_ramdisk_size = static_cast<uint32_t>(loaded.initrd_size >> 32);
  // zero-page.rst, acpi_rsdp_addr (0x070): read by kernels of protocol 2.14 and later; older
  // ones find the RSDP by scanning the BIOS area, where Ember puts it anyway.
  if (options.acpi_rsdp != 0 && h.version >= kRsdpVersion) {
    bp.acpi_rsdp_addr = options.acpi_rsdp;
  }
  // zero-page.rst, e820_table (0x2d0) and e820_entries (0x1e8): the firmware memory map.
  for (size_t i = 0; i < map.size(); ++i) {
    bp.e820_table[i] = BootE820Entry{map[i].addr, map[i].size, static_cast<uint32_t>(map[i].type)};
  }
  bp.e820_entries = static_cast<uint8_t>(map.size());
  EMBER_TRY(mem.writeObj(GuestAddress(layout::kBootParams), bp));
  return loaded;
}

}  // namespace ember::vmm
