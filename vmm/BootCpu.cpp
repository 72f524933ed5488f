// Segment, control-register and page-table set-up for the entry protocols.
#include "vmm/BootCpu.h"

#include "vmm/MemoryLayout.h"

namespace ember::vmm {

namespace {

constexpr uint64_t kCr0Pe = 1ULL << 0, kCr0Et = 1ULL << 4, kCr0Pg = 1ULL << 31;
constexpr uint64_t kCr4Pae = 1ULL << 5;
constexpr uint64_t kEferLme = 1ULL << 8, kEferLma = 1ULL << 10;

kvm_segment flatSegment(uint16_t selector, uint8_t type, bool code64) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = code64 ? 0 : 1;
  s.s = 1;
  s.l = code64 ? 1 : 0;
  s.g = 1;
  return s;
}

void setTss(kvm_sregs& s) {
  s.tr = kvm_segment{};
  s.tr.selector = 0x18;
  s.tr.limit = 0x67;
  s.tr.type = 11;  // 32-bit busy TSS
  s.tr.present = 1;
  s.ldt = kvm_segment{};
  s.ldt.type = 2;
  s.ldt.present = 1;
  s.ldt.unusable = 1;
}

}  // namespace

Result<void> setPvhEntryState(kvm::Vcpu& vcpu, uint32_t entry, uint32_t start_info) {
  kvm_sregs s = EMBER_TRY(vcpu.getSregs());
  s.cs = flatSegment(0x08, 0xb, false);                              // execute/read, accessed
  s.ds = s.es = s.fs = s.gs = s.ss = flatSegment(0x10, 0x3, false);  // read/write, accessed
  setTss(s);
  s.cr0 = kCr0Pe | kCr0Et;
  s.cr3 = 0;
  s.cr4 = 0;
  s.efer = 0;
  EMBER_TRY(vcpu.setSregs(s));
  kvm_regs r{};
  r.rip = entry;
  r.rbx = start_info;
  r.rflags = 0x2;
  EMBER_TRY(vcpu.setRegs(r));
  return {};
}

Result<void> setLongModeEntryState(kvm::Vcpu& vcpu, const GuestMemory& mem, uint64_t entry,
                                   uint64_t rsi) {
  using namespace layout;
  // GDT: null, unused, 64-bit code (0x10), data (0x18), as the Linux boot protocol expects
  // __BOOT_CS = 0x10 and __BOOT_DS = 0x18.
  const uint64_t gdt[] = {0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL};
  EMBER_TRY(mem.writeObj(GuestAddress(kGdtAddress), gdt));

  // PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages: 0-4 GiB identity.
  const uint64_t pml4 = kPageTables, pdpt = kPageTables + 0x1000, pd = kPageTables + 0x2000;
  EMBER_TRY(mem.fill(GuestAddress(pml4), 0, 0x6000));
  EMBER_TRY(mem.writeObj(GuestAddress(pml4), pdpt | 0x3));
  for (uint64_t i = 0; i < 4; ++i) {
    EMBER_TRY(mem.writeObj(GuestAddress(pdpt + i * 8), (pd + i * 0x1000) | 0x3));
  }
  for (uint64_t i = 0; i < 4 * 512; ++i) {
    uint64_t flags = 0x83;  // present, writable, 2 MiB page
    EMBER_TRY(mem.writeObj(GuestAddress(pd + i * 8), (i << 21) | flags));
  }

  kvm_sregs s = EMBER_TRY(vcpu.getSregs());
  s.cs = flatSegment(0x10, 0xb, true);
  s.ds = s.es = s.fs = s.gs = s.ss = flatSegment(0x18, 0x3, false);
  setTss(s);
  s.gdt.base = kGdtAddress;
  s.gdt.limit = sizeof gdt - 1;
  s.cr3 = pml4;
  s.cr4 = kCr4Pae;
  s.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
  s.efer = kEferLme | kEferLma;
  EMBER_TRY(vcpu.setSregs(s));
  kvm_regs r{};
  r.rip = entry;
  r.rsi = rsi;
  r.rflags = 0x2;
  EMBER_TRY(vcpu.setRegs(r));
  return {};
}

}  // namespace ember::vmm
