// The guest physical address map.
//
//   0x0000_0000 .. 0x0009_fc00   RAM (real-mode area; boot structures live here)
//   0x0009_fc00 .. 0x0010_0000   reserved (EBDA, VGA hole, BIOS area; ACPI RSDP at 0xe0000)
//   0x0010_0000 .. low_end       RAM (kernel, initrd); low_end = min(memory, 3 GiB)
//   0xc000_0000 .. 0xe000_0000   32-bit PCI MMIO window (BARs)
//   0xe000_0000 .. 0xf000_0000   PCI ECAM (256 buses)
//   0xfec0_0000                  IOAPIC         0xfee0_0000  LAPIC
//   0xfffb_c000 .. 0xfffc_0000   KVM identity map page and TSS
//   0x1_0000_0000 .. +rest       RAM above 4 GiB when memory > 3 GiB
//   after the high RAM           64-bit PCI MMIO window
#pragma once

#include <cstdint>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"

namespace ember::vmm {

namespace layout {
constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

constexpr uint64_t kEbdaStart = 0x9fc00;
constexpr uint64_t kHighMemoryStart = 0x100000;  // 1 MiB
constexpr uint64_t kMmioHoleStart = 3 * GiB;
constexpr uint64_t kFourGiB = 4 * GiB;

constexpr uint64_t kPciMmio32Start = 0xc0000000;
constexpr uint64_t kPciMmio32Size = 0x20000000;
constexpr uint64_t kPciIoStart = 0xc000;  // port window for I/O BARs (legacy virtio)
constexpr uint64_t kPciIoSize = 0x4000;
constexpr uint64_t kEcamStart = 0xe0000000;
constexpr uint64_t kEcamSize = 0x10000000;
constexpr uint64_t kIoapicAddress = 0xfec00000;
constexpr uint64_t kLapicAddress = 0xfee00000;
constexpr uint64_t kIdentityMapAddress = 0xfffbc000;
constexpr uint64_t kTssAddress = 0xfffbd000;

// Boot structures in low memory (below the EBDA).
constexpr uint64_t kGdtAddress = 0x500;
constexpr uint64_t kPvhStartInfo = 0x6000;
constexpr uint64_t kPvhModlist = 0x6800;
constexpr uint64_t kPvhMemmap = 0x7000;
constexpr uint64_t kPageTables = 0x9000;   // PML4 at 0x9000, PDPT 0xa000, PDs 0xb000-0xefff
constexpr uint64_t kBootParams = 0x10000;  // Linux zero page (bzImage boot)
constexpr uint64_t kCmdline = 0x20000;
constexpr uint64_t kCmdlineMax = 0x10000;
constexpr uint64_t kAcpiStart = 0xe0000;  // RSDP and tables, in the BIOS read-only area

constexpr uint64_t kMinMemory = 16 * MiB;
constexpr uint64_t kMaxMemory = 1024 * GiB;
}  // namespace layout

// E820 / PVH memory map entry types.
enum class E820Type : uint32_t { Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4 };

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  E820Type type;
};

class MemoryLayout {
 public:
  static Result<MemoryLayout> forSize(uint64_t memory_bytes);

  uint64_t memorySize() const { return memory_; }
  // RAM regions to allocate and register as KVM memory slots.
  const std::vector<GuestRegionSpec>& ramRegions() const { return ram_; }
  // The firmware memory map given to the guest (E820 / PVH memmap).
  std::vector<E820Entry> memoryMap() const;
  uint64_t lowRamEnd() const { return ram_.front().start.raw + ram_.front().size; }
  // First address above all RAM, 1 GiB aligned: start of the 64-bit PCI window.
  uint64_t pciMmio64Start() const;

 private:
  uint64_t memory_ = 0;
  std::vector<GuestRegionSpec> ram_;
};

}  // namespace ember::vmm
