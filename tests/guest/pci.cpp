// PCI enumeration, BAR sizing and re-assignment, and capability walking (PCI Local Bus 3.0
// sections 3.2.2.3.2, 6.1, 6.2.5, 6.7, 6.8.2; PCIe ECAM; ACPI MCFG for the ECAM base). BARs are
// sized with decoding disabled, then every BAR of every non-bridge function on bus 0 is moved to
// an address of this driver's choosing (top-down in the windows of pci.h, never the address it
// was found at), and decoding is enabled again only once every BAR has its new address.
#include "pci.h"

namespace guest {

namespace {

constinit PciBus g_bus;

bool str_eq(const char* a, const char* b) {
  size_t n = strlen(b);
  return strlen(a) == n && memcmp(a, b, n) == 0;
}

// ACPI 6.x section 5.2.5.1: without a pointer from the boot protocol, the RSDP is found on a
// 16-byte boundary in the BIOS area 0xe0000-0xfffff, its first 20 bytes summing to 0.
uint64_t find_rsdp() {
  if (boot_info.rsdp != 0) return boot_info.rsdp;
  uint64_t sig;
  memcpy(&sig, "RSD PTR ", 8);
  for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
    if (*reinterpret_cast<const uint64_t*>(a) != sig) continue;
    const auto* p = reinterpret_cast<const uint8_t*>(a);
    uint8_t sum = 0;
    for (int i = 0; i < 20; ++i) sum = static_cast<uint8_t>(sum + p[i]);
    if (sum == 0) return a;
  }
  return 0;
}

// ACPI 6.x sections 5.2.5 (RSDP), 5.2.7/5.2.8 (RSDT/XSDT) and the PCI Firmware spec's MCFG:
// the ECAM base of segment 0 covering bus 0, or 0.
uint64_t mcfg_ecam_base() {
  uint64_t rsdp = find_rsdp();
  if (rsdp == 0 || rsdp >= (1ULL << 32)) return 0;
  const auto* p = reinterpret_cast<const uint8_t*>(rsdp);
  if (memcmp(p, "RSD PTR ", 8) != 0) return 0;
  uint32_t rsdt;
  uint64_t xsdt = 0;
  memcpy(&rsdt, p + 16, 4);
  if (p[15] >= 2) memcpy(&xsdt, p + 24, 8);
  uint64_t root = xsdt ? xsdt : rsdt;
  size_t entry_size = xsdt ? 8 : 4;
  if (root == 0 || root >= (1ULL << 32)) return 0;
  const auto* hdr = reinterpret_cast<const uint8_t*>(root);
  uint32_t len;
  memcpy(&len, hdr + 4, 4);
  if (len < 36 || len > 4096) return 0;
  for (size_t off = 36; off + entry_size <= len; off += entry_size) {
    uint64_t table = 0;
    memcpy(&table, hdr + off, entry_size);
    if (table == 0 || table >= (1ULL << 32)) continue;
    const auto* t = reinterpret_cast<const uint8_t*>(table);
    if (memcmp(t, "MCFG", 4) != 0) continue;
    uint32_t tlen;
    memcpy(&tlen, t + 4, 4);
    if (tlen < 44 || tlen > 4096) return 0;
    uint8_t sum = 0;
    for (uint32_t i = 0; i < tlen; ++i) sum = static_cast<uint8_t>(sum + t[i]);
    if (sum != 0) return 0;
    for (uint32_t e = 44; e + 16 <= tlen; e += 16) {
      uint64_t base;
      uint16_t segment;
      memcpy(&base, t + e, 8);
      memcpy(&segment, t + e + 8, 2);
      if (segment == 0 && t[e + 10] == 0) return base;
    }
  }
  return 0;
}

}  // namespace

PciBus& PciBus::get() {
  if (!g_bus.enumerated_) g_bus.enumerate();
  return g_bus;
}

PciFunction* PciBus::find(uint8_t dev, uint8_t fn) {
  for (size_t i = 0; i < count_; ++i) {
    if (fns_[i].dev == dev && fns_[i].fn == fn) return &fns_[i];
  }
  return nullptr;
}

uint32_t PciBus::read(uint8_t dev, uint8_t fn, uint16_t off, uint8_t size) const {
  if (mech_ == Mechanism::Ecam) {
    uint64_t a =
        ecam_ + (static_cast<uint64_t>(dev) << 15) + (static_cast<uint64_t>(fn) << 12) + off;
    if (size == 1) return mmio_read<uint8_t>(a);
    if (size == 2) return mmio_read<uint16_t>(a);
    return mmio_read<uint32_t>(a);
  }
  if (off >= 256) return size == 4 ? 0xffffffff : (1u << (8 * size)) - 1;
  outl(0xcf8, 0x80000000u | (dev << 11) | (fn << 8) | (off & 0xfc));
  uint16_t port = static_cast<uint16_t>(0xcfc + (off & 3));
  if (size == 1) return inb(port);
  if (size == 2) return inw(port);
  return inl(port);
}

void PciBus::write(uint8_t dev, uint8_t fn, uint16_t off, uint8_t size, uint32_t value) const {
  if (mech_ == Mechanism::Ecam) {
    uint64_t a =
        ecam_ + (static_cast<uint64_t>(dev) << 15) + (static_cast<uint64_t>(fn) << 12) + off;
    if (size == 1)
      mmio_write<uint8_t>(a, static_cast<uint8_t>(value));
    else if (size == 2)
      mmio_write<uint16_t>(a, static_cast<uint16_t>(value));
    else
      mmio_write<uint32_t>(a, value);
    return;
  }
  if (off >= 256) return;
  outl(0xcf8, 0x80000000u | (dev << 11) | (fn << 8) | (off & 0xfc));
  uint16_t port = static_cast<uint16_t>(0xcfc + (off & 3));
  if (size == 1)
    outb(port, static_cast<uint8_t>(value));
  else if (size == 2)
    outw(port, static_cast<uint16_t>(value));
  else
    outl(port, value);
}

void PciBus::update_command(const PciFunction& f, uint16_t set, uint16_t clear) const {
  uint16_t cmd = read16(f, pcicfg::kCommand);
  write16(f, pcicfg::kCommand, static_cast<uint16_t>((cmd & ~clear) | set));
}

void PciBus::enumerate() {
  enumerated_ = true;
  char v[32];
  if (cmdline_get("pci", v, sizeof v) && str_eq(v, "ecam")) mech_ = Mechanism::Ecam;
  if (mech_ == Mechanism::Ecam) {
    uint64_t base;
    if (cmdline_get("pci.ecam", v, sizeof v) && parse_u64(v, &base)) {
      ecam_ = base;
      ecam_source_ = "command line";
    } else if ((base = mcfg_ecam_base()) != 0) {
      ecam_ = base;
      ecam_source_ = "ACPI MCFG";
    } else {
      ecam_ = 0xe0000000;
      ecam_source_ = "default";
    }
    // Bus 0 only: 32 devices x 8 functions x 4 KiB, uncached.
    if (!map_identity(ecam_, 1 << 20, true)) {
      snprintf(error_, sizeof error_, "cannot map ECAM at %lx", ecam_);
      return;
    }
  }
  for (uint8_t dev = 0; dev < 32; ++dev) {
    uint16_t vendor = static_cast<uint16_t>(read(dev, 0, pcicfg::kVendorId, 2));
    if (vendor == 0xffff || vendor == 0) continue;
    probe_function(dev, 0);
    if (!(read(dev, 0, pcicfg::kHeaderType, 1) & 0x80)) continue;
    for (uint8_t fn = 1; fn < 8; ++fn) {
      vendor = static_cast<uint16_t>(read(dev, fn, pcicfg::kVendorId, 2));
      if (vendor != 0xffff && vendor != 0) probe_function(dev, fn);
    }
  }
  assign_bars();
}

void PciBus::probe_function(uint8_t dev, uint8_t fn) {
  if (count_ == kMaxFunctions) {
    snprintf(error_, sizeof error_, "more than %zu functions", kMaxFunctions);
    return;
  }
  PciFunction& f = fns_[count_++];
  f.dev = dev;
  f.fn = fn;
  f.vendor = read16(f, pcicfg::kVendorId);
  f.device = read16(f, pcicfg::kDeviceId);
  f.revision = read8(f, pcicfg::kRevision);
  f.prog_if = read8(f, pcicfg::kProgIf);
  f.subclass = read8(f, pcicfg::kSubclass);
  f.class_code = read8(f, pcicfg::kClass);
  f.header_type = read8(f, pcicfg::kHeaderType);
  if ((f.header_type & 0x7f) == 0) {
    f.subsys_vendor = read16(f, pcicfg::kSubsysVendor);
    f.subsys_id = read16(f, pcicfg::kSubsysId);
  }
  f.int_line = read8(f, pcicfg::kIntLine);
  f.int_pin = read8(f, pcicfg::kIntPin);
  // Bridges (and other header types) keep the resources firmware gave them.
  if ((f.header_type & 0x7f) == 0 && !f.is_bridge()) size_bars(f);
}

// PCI 3.0 section 6.2.5.1: write all ones, read the mask back, restore; decoding off meanwhile.
void PciBus::size_bars(PciFunction& f) {
  uint16_t cmd = read16(f, pcicfg::kCommand);
  write16(f, pcicfg::kCommand, cmd & ~(pcicfg::kCmdIo | pcicfg::kCmdMemory));
  for (int i = 0; i < 6; ++i) {
    uint16_t off = static_cast<uint16_t>(pcicfg::kBar0 + 4 * i);
    uint32_t orig = read32(f, off);
    write32(f, off, 0xffffffff);
    uint32_t probe = read32(f, off);
    write32(f, off, orig);
    uint32_t restored = read32(f, off);
    PciBar& b = f.bar[i];
    const char* problem = nullptr;
    if (orig & 1) {
      b.io = true;
      uint32_t mask = probe & ~3u;
      if (mask == 0) continue;
      if (!(mask & 0xffff0000)) mask |= 0xffff0000;  // a 16-bit I/O decoder
      b.size = static_cast<uint32_t>(~mask + 1);
      b.found = orig & ~3u;
      if ((probe & 3) != (orig & 3)) problem = "read-only low bits changed";
    } else {
      uint32_t type = (orig >> 1) & 3;
      b.prefetchable = (orig & 8) != 0;
      uint64_t mask = probe & ~0xfu;
      b.found = orig & ~0xfu;
      if (type == 2) {
        if (i == 5) {
          snprintf(f.error, sizeof f.error, "64-bit BAR5 has no upper half");
          break;
        }
        uint32_t orig_hi = read32(f, off + 4);
        write32(f, off + 4, 0xffffffff);
        uint32_t probe_hi = read32(f, off + 4);
        write32(f, off + 4, orig_hi);
        if (read32(f, off + 4) != orig_hi && !f.error[0]) {
          snprintf(f.error, sizeof f.error, "BAR%d upper half not restored", i);
        }
        mask |= static_cast<uint64_t>(probe_hi) << 32;
        b.found |= static_cast<uint64_t>(orig_hi) << 32;
        b.is64 = true;
        if (mask != 0) b.size = ~mask + 1;
        ++i;  // the upper half is not a BAR of its own
      } else if (type == 0) {
        if (mask != 0) b.size = static_cast<uint32_t>(~static_cast<uint32_t>(mask) + 1);
      } else {
        problem = "reserved memory type";
      }
      if (b.size != 0 && (probe & 0xf) != (orig & 0xf)) problem = "read-only low bits changed";
    }
    if (!problem && b.size != 0 && (b.size & (b.size - 1)) != 0) problem = "size not a power of 2";
    if (!problem && b.size != 0 && b.size < (b.io ? 4u : 16u)) problem = "size below the minimum";
    if (!problem && restored != orig) problem = "not restored after sizing";
    if (problem) {
      if (!f.error[0]) {
        snprintf(f.error, sizeof f.error, "BAR%d (found %x, mask %x): %s", b.is64 ? i - 1 : i, orig,
                 probe, problem);
      }
      b.size = 0;
    }
  }
  // Decoding stays off until assign_bars() has moved every BAR.
}

void PciBus::program_bar(PciFunction& f, int i) {
  PciBar& b = f.bar[i];
  uint16_t off = static_cast<uint16_t>(pcicfg::kBar0 + 4 * i);
  write32(f, off, static_cast<uint32_t>(b.addr));
  if (b.is64) write32(f, off + 4, static_cast<uint32_t>(b.addr >> 32));
  uint64_t back = read32(f, off) & (b.io ? ~3u : ~0xfu);
  if (b.is64) back |= static_cast<uint64_t>(read32(f, off + 4)) << 32;
  if (back != b.addr && !f.error[0]) {
    snprintf(f.error, sizeof f.error, "BAR%d reads %lx after writing %lx", i, back, b.addr);
  }
}

void PciBus::assign_bars() {
  struct Req {
    uint8_t f, bar;
  };
  Req reqs[kMaxFunctions * 6];
  size_t n = 0;
  for (size_t i = 0; i < count_; ++i) {
    for (uint8_t b = 0; b < 6; ++b) {
      if (fns_[i].bar[b].size != 0) reqs[n++] = Req{static_cast<uint8_t>(i), b};
    }
  }
  // Largest first: with power-of-two sizes, top-down placement then needs no padding.
  for (size_t i = 1; i < n; ++i) {
    for (size_t j = i; j > 0 && fns_[reqs[j].f].bar[reqs[j].bar].size >
                                    fns_[reqs[j - 1].f].bar[reqs[j - 1].bar].size;
         --j) {
      Req t = reqs[j];
      reqs[j] = reqs[j - 1];
      reqs[j - 1] = t;
    }
  }
  uint64_t io_top = kPciIoEnd, mem_top = kPciMemEnd;
  for (size_t k = 0; k < n; ++k) {
    PciFunction& f = fns_[reqs[k].f];
    PciBar& b = f.bar[reqs[k].bar];
    uint64_t& top = b.io ? io_top : mem_top;
    uint64_t bottom = b.io ? kPciIoStart : kPciMemStart;
    uint64_t a = (top - b.size) & ~(b.size - 1);
    if (a == b.found) a -= b.size;  // always a new address: this exercises the VMM's remapping
    if (b.size > top - bottom || a < bottom || a >= top) {
      snprintf(error_, sizeof error_, "no room for %02x.%x BAR%u (%lx bytes)", f.dev, f.fn,
               reqs[k].bar, b.size);
      continue;
    }
    b.addr = a;
    top = a;
  }
  for (size_t i = 0; i < count_; ++i) {
    PciFunction& f = fns_[i];
    if ((f.header_type & 0x7f) != 0 || f.is_bridge()) continue;
    uint16_t enable = 0;
    for (int b = 0; b < 6; ++b) {
      if (f.bar[b].size == 0 || f.bar[b].addr == 0) continue;
      program_bar(f, b);
      enable |= f.bar[b].io ? pcicfg::kCmdIo : pcicfg::kCmdMemory;
    }
    update_command(f, enable, 0);
    f.relocated = true;
  }
}

uint8_t PciBus::find_capability(const PciFunction& f, uint8_t id, uint8_t after) const {
  if (!(read16(f, pcicfg::kStatus) & pcicfg::kStatusCapList)) return 0;
  uint8_t ptr = after ? read8(f, after + 1) : read8(f, pcicfg::kCapPtr);
  for (int guard = 0; guard < 48 && (ptr & 0xfc) >= 0x40; ++guard) {
    ptr &= 0xfc;
    if (read8(f, ptr) == id) return ptr;
    ptr = read8(f, ptr + 1);
  }
  return 0;
}

bool PciBus::check_capabilities(const PciFunction& f, char* why, size_t n) const {
  uint16_t status = read16(f, pcicfg::kStatus);
  uint8_t ptr = read8(f, pcicfg::kCapPtr);
  if (!(status & pcicfg::kStatusCapList)) return true;  // the pointer is undefined then
  uint64_t seen = 0;
  uint8_t at = pcicfg::kCapPtr;
  while (ptr != 0) {
    if (ptr & 3) return snprintf(why, n, "pointer %x at %x not dword aligned", ptr, at), false;
    if (ptr < 0x40) return snprintf(why, n, "pointer %x at %x inside the header", ptr, at), false;
    uint64_t bit = 1ULL << ((ptr - 0x40) / 4);
    if (seen & bit) return snprintf(why, n, "capability list loops back to %x", ptr), false;
    seen |= bit;
    uint8_t id = read8(f, ptr);
    if (id == 0 || id == 0xff) return snprintf(why, n, "capability id %x at %x", id, ptr), false;
    if (id == pcicfg::kCapMsix) {
      uint16_t ctrl = read16(f, ptr + 2);
      uint32_t entries = (ctrl & 0x7ff) + 1u;
      uint32_t tbl = read32(f, ptr + 4), pba = read32(f, ptr + 8);
      uint64_t tbl_end = (tbl & ~7u) + 16ULL * entries,
               pba_end = (pba & ~7u) + (entries + 63) / 64 * 8;
      for (int k = 0; k < 2; ++k) {
        uint32_t bir = (k == 0 ? tbl : pba) & 7;
        uint64_t end = k == 0 ? tbl_end : pba_end;
        if (bir > 5 || f.bar[bir].size == 0 || f.bar[bir].io || end > f.bar[bir].size) {
          return snprintf(why, n, "MSI-X %s (BIR %u, ends at %lx) outside its BAR",
                          k == 0 ? "table" : "PBA", bir, end),
                 false;
        }
      }
      if ((tbl & 7) == (pba & 7) && (tbl & ~7u) < pba_end && (pba & ~7u) < tbl_end) {
        return snprintf(why, n, "MSI-X table and PBA overlap"), false;
      }
    }
    at = static_cast<uint8_t>(ptr + 1);
    ptr = read8(f, at);
  }
  if (mech_ != Mechanism::Ecam) return true;
  // PCIe extended capabilities: 32-bit headers from 0x100, next pointer in bits 31:20.
  uint16_t ext = 0x100;
  for (int guard = 0; ext != 0; ++guard) {
    uint32_t hdr = read32(f, ext);
    if (ext == 0x100 && (hdr == 0 || hdr == 0xffffffff)) return true;  // none
    if (guard >= (4096 - 256) / 4) return snprintf(why, n, "extended capability list loops"), false;
    uint16_t next = static_cast<uint16_t>(hdr >> 20);
    if (next != 0 && (next < 0x100 || (next & 3))) {
      return snprintf(why, n, "extended capability at %x points to %x", ext, next), false;
    }
    ext = next;
  }
  return true;
}

bool PciBus::address_assigned(uint64_t addr, bool io) const {
  for (size_t i = 0; i < count_; ++i) {
    for (const PciBar& b : fns_[i].bar) {
      if (b.size != 0 && b.io == io && addr >= b.addr && addr < b.addr + b.size) return true;
    }
  }
  return false;
}

}  // namespace guest
