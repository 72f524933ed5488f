// Loading Linux bzImage kernels through the x86 boot protocol (Linux's Documentation/x86/
// boot.rst), entering at the 64-bit entry point with %rsi pointing at the zero page.
//
// The real-mode setup code in the image is never run: Ember plays the part of the boot loader
// and of that setup code, so it builds `boot_params` (the zero page, Documentation/x86/
// zero-page.rst) itself, with the memory map, the command line, the initrd and the ACPI RSDP.
// Parsing is separate from loading so that it can be tested on bytes alone; every field the
// image supplies is checked, with overflow-checked arithmetic, against the file and then
// against guest RAM before a byte is copied. The layouts below are written from those two
// documents; each offset is pinned by a static_assert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "vmm/MemoryLayout.h"

namespace ember::vmm {

// boot.rst, "The Real-Mode Kernel Header": the setup header, which sits at offset 0x1f1 of both
// the image file and boot_params. Field comments give the absolute offset and the protocol
// version that introduced the field.
struct __attribute__((packed)) SetupHeader {
  uint8_t setup_sects;             // 0x1f1  sectors of real-mode setup after the boot sector
  uint16_t root_flags;             // 0x1f2
  uint32_t syssize;                // 0x1f4  protected-mode code size in 16-byte paragraphs
  uint16_t ram_size;               // 0x1f8  obsolete
  uint16_t vid_mode;               // 0x1fa
  uint16_t root_dev;               // 0x1fc
  uint16_t boot_flag;              // 0x1fe  0xaa55
  uint16_t jump;                   // 0x200  short jump; its second byte bounds the header
  uint32_t header;                 // 0x202  "HdrS" (2.00+)
  uint16_t version;                // 0x206  protocol version, major << 8 | minor
  uint32_t realmode_swtch;         // 0x208
  uint16_t start_sys_seg;          // 0x20c  obsolete
  uint16_t kernel_version;         // 0x20e
  uint8_t type_of_loader;          // 0x210  written by the loader
  uint8_t loadflags;               // 0x211
  uint16_t setup_move_size;        // 0x212
  uint32_t code32_start;           // 0x214
  uint32_t ramdisk_image;          // 0x218  written by the loader
  uint32_t ramdisk_size;           // 0x21c  written by the loader
  uint32_t bootsect_kludge;        // 0x220  obsolete
  uint16_t heap_end_ptr;           // 0x224  (2.01+)
  uint8_t ext_loader_ver;          // 0x226  (2.02+)
  uint8_t ext_loader_type;         // 0x227  (2.02+)
  uint32_t cmd_line_ptr;           // 0x228  (2.02+) written by the loader
  uint32_t initrd_addr_max;        // 0x22c  (2.03+) highest address the initrd may occupy
  uint32_t kernel_alignment;       // 0x230  (2.05+)
  uint8_t relocatable_kernel;      // 0x234  (2.05+)
  uint8_t min_alignment;           // 0x235  (2.10+) log2
  uint16_t xloadflags;             // 0x236  (2.12+)
  uint32_t cmdline_size;           // 0x238  (2.06+) maximum command line length, without NUL
  uint32_t hardware_subarch;       // 0x23c  (2.07+)
  uint64_t hardware_subarch_data;  // 0x240  (2.07+)
  uint32_t payload_offset;         // 0x248  (2.08+)
  uint32_t payload_length;         // 0x24c  (2.08+)
  uint64_t setup_data;             // 0x250  (2.09+)
  uint64_t pref_address;           // 0x258  (2.10+)
  uint32_t init_size;              // 0x260  (2.10+) linear memory the kernel needs to boot
  uint32_t handover_offset;        // 0x264  (2.11+)
  uint32_t kernel_info_offset;     // 0x268  (2.15+)
};

constexpr size_t kSetupHeaderOffset = 0x1f1;
#define EMBER_HDR_AT(field, off) \
  static_assert(offsetof(SetupHeader, field) + kSetupHeaderOffset == (off), #field)
EMBER_HDR_AT(setup_sects, 0x1f1);
EMBER_HDR_AT(syssize, 0x1f4);
EMBER_HDR_AT(vid_mode, 0x1fa);
EMBER_HDR_AT(boot_flag, 0x1fe);
EMBER_HDR_AT(jump, 0x200);
EMBER_HDR_AT(header, 0x202);
EMBER_HDR_AT(version, 0x206);
EMBER_HDR_AT(type_of_loader, 0x210);
EMBER_HDR_AT(loadflags, 0x211);
EMBER_HDR_AT(code32_start, 0x214);
EMBER_HDR_AT(ramdisk_image, 0x218);
EMBER_HDR_AT(ramdisk_size, 0x21c);
EMBER_HDR_AT(heap_end_ptr, 0x224);
EMBER_HDR_AT(cmd_line_ptr, 0x228);
EMBER_HDR_AT(initrd_addr_max, 0x22c);
EMBER_HDR_AT(kernel_alignment, 0x230);
EMBER_HDR_AT(relocatable_kernel, 0x234);
EMBER_HDR_AT(xloadflags, 0x236);
EMBER_HDR_AT(cmdline_size, 0x238);
EMBER_HDR_AT(hardware_subarch, 0x23c);
EMBER_HDR_AT(payload_offset, 0x248);
EMBER_HDR_AT(setup_data, 0x250);
EMBER_HDR_AT(pref_address, 0x258);
EMBER_HDR_AT(init_size, 0x260);
EMBER_HDR_AT(handover_offset, 0x264);
EMBER_HDR_AT(kernel_info_offset, 0x268);
#undef EMBER_HDR_AT
static_assert(sizeof(SetupHeader) == 0x26c - kSetupHeaderOffset);

// zero-page.rst: one memory map entry of boot_params.e820_table.
struct __attribute__((packed)) BootE820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
static_assert(sizeof(BootE820Entry) == 20);

constexpr size_t kBootE820MaxEntries = 128;  // zero-page.rst: e820_table holds 128 entries

// zero-page.rst: the zero page. Areas Ember leaves zero are kept as opaque padding.
struct __attribute__((packed)) BootParams {
  uint8_t screen_info[0x40];        // 0x000
  uint8_t apm_bios_info[0x14];      // 0x040
  uint8_t pad0[4];                  // 0x054
  uint64_t tboot_addr;              // 0x058
  uint8_t ist_info[0x10];           // 0x060
  uint64_t acpi_rsdp_addr;          // 0x070
  uint8_t pad1[8];                  // 0x078
  uint8_t hd0_info[0x10];           // 0x080
  uint8_t hd1_info[0x10];           // 0x090
  uint8_t sys_desc_table[0x10];     // 0x0a0
  uint8_t olpc_ofw_header[0x10];    // 0x0b0
  uint32_t ext_ramdisk_image;       // 0x0c0  bits 32-63 of ramdisk_image
  uint32_t ext_ramdisk_size;        // 0x0c4  bits 32-63 of ramdisk_size
  uint32_t ext_cmd_line_ptr;        // 0x0c8  bits 32-63 of cmd_line_ptr
  uint8_t pad2[0x140 - 0xcc];       // 0x0cc
  uint8_t edid_info[0x80];          // 0x140
  uint8_t efi_info[0x20];           // 0x1c0
  uint32_t alt_mem_k;               // 0x1e0
  uint32_t scratch;                 // 0x1e4
  uint8_t e820_entries;             // 0x1e8
  uint8_t eddbuf_entries;           // 0x1e9
  uint8_t edd_mbr_sig_buf_entries;  // 0x1ea
  uint8_t kbd_status;               // 0x1eb
  uint8_t secure_boot;              // 0x1ec
  uint8_t pad3[2];                  // 0x1ed
  uint8_t sentinel;                 // 0x1ef  must stay 0 (a nonzero value makes Linux
                                    //        distrust fields the loader did not clear)
  uint8_t pad4;                     // 0x1f0
  SetupHeader hdr;                  // 0x1f1
  uint8_t pad5[0x290 - 0x26c];      // 0x26c
  uint32_t edd_mbr_sig_buffer[16];  // 0x290
  BootE820Entry e820_table[kBootE820MaxEntries];  // 0x2d0
  uint8_t pad6[0xd00 - 0xcd0];                    // 0xcd0
  uint8_t eddbuf[0x1ec];                          // 0xd00
  uint8_t pad7[0x1000 - 0xeec];                   // 0xeec
};
#define EMBER_BP_AT(field, off) static_assert(offsetof(BootParams, field) == (off), #field)
EMBER_BP_AT(tboot_addr, 0x058);
EMBER_BP_AT(acpi_rsdp_addr, 0x070);
EMBER_BP_AT(ext_ramdisk_image, 0x0c0);
EMBER_BP_AT(ext_ramdisk_size, 0x0c4);
EMBER_BP_AT(ext_cmd_line_ptr, 0x0c8);
EMBER_BP_AT(edid_info, 0x140);
EMBER_BP_AT(efi_info, 0x1c0);
EMBER_BP_AT(alt_mem_k, 0x1e0);
EMBER_BP_AT(e820_entries, 0x1e8);
EMBER_BP_AT(sentinel, 0x1ef);
EMBER_BP_AT(hdr, 0x1f1);
EMBER_BP_AT(edd_mbr_sig_buffer, 0x290);
EMBER_BP_AT(e820_table, 0x2d0);
EMBER_BP_AT(eddbuf, 0xd00);
#undef EMBER_BP_AT
static_assert(sizeof(BootParams) == 4096);

// Field values from boot.rst.
namespace bzimage {
constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;     // "HdrS", little-endian
constexpr uint16_t kMinVersion = 0x020a;          // 2.10: pref_address and init_size
constexpr uint16_t kXloadflagsVersion = 0x020c;   // 2.12: xloadflags
constexpr uint16_t kRsdpVersion = 0x020e;         // 2.14: boot_params.acpi_rsdp_addr is read
constexpr uint8_t kLoadedHigh = 0x01;             // loadflags bit 0: protected-mode code at 1 MiB+
constexpr uint16_t kXlfKernel64 = 0x01;           // xloadflags bit 0: 64-bit entry at +0x200
constexpr uint8_t kTypeOfLoaderUndefined = 0xff;  // "no assigned loader ID"
constexpr uint64_t kEntry64Offset = 0x200;        // 64-bit entry, from the protected-mode start
constexpr uint64_t kSectorSize = 512;
constexpr uint8_t kDefaultSetupSects = 4;           // setup_sects == 0 means 4
constexpr uint64_t kDefaultLoadAddress = 0x100000;  // code32_start's traditional value
}  // namespace bzimage

// A validated bzImage: where its parts are in the file and what it asks of its loader.
struct BzImage {
  SetupHeader header;          // as found in the file
  uint64_t setup_size = 0;     // (setup_sects + 1) * 512: boot sector plus real-mode setup
  uint64_t header_end = 0;     // file offset just past the setup header (0x202 + jump byte)
  uint64_t kernel_offset = 0;  // file offset of the protected-mode kernel (== setup_size)
  uint64_t kernel_size = 0;    // bytes of protected-mode kernel in the file
  uint64_t init_size = 0;      // linear memory the kernel needs from its load address
  bool relocatable = false;
};

// True when `file` carries the boot sector flag and the "HdrS" magic.
bool looksLikeBzImage(std::span<const uint8_t> file);

// Validates the setup header and the file's extent: a bzImage (boot flag, magic) of protocol
// >= 2.10 that loads high and has a 64-bit entry point, whose setup and protected-mode parts are
// all present.
Result<BzImage> parseBzImage(std::span<const uint8_t> file);

struct BzImageBootOptions {
  std::string_view cmdline;
  std::span<const uint8_t> initrd;  // empty: no initrd
  uint64_t acpi_rsdp = 0;           // 0: none given (the guest scans the BIOS area)
};

struct LoadedBzImage {
  uint64_t load_address = 0;  // where the protected-mode kernel was copied
  uint64_t entry64 = 0;       // load_address + 0x200, entered in long mode
  uint64_t boot_params = 0;   // the zero page, for %rsi
  uint64_t initrd_address = 0;
  uint64_t initrd_size = 0;
};

// Copies the protected-mode kernel into guest RAM, places the initrd above it, and writes the
// command line and the zero page (layout::kCmdline, layout::kBootParams).
Result<LoadedBzImage> loadBzImage(const BzImage& image, std::span<const uint8_t> file,
                                  const GuestMemory& mem, const MemoryLayout& layout,
                                  const BzImageBootOptions& options);

}  // namespace ember::vmm
