// MSI-X capability, table and PBA access (PCI Local Bus 3.0 section 6.8.2). The table and PBA
// are accessed with aligned 32-bit reads and writes only, as the spec requires of software.
#include "msix.h"

namespace guest {

namespace {
constexpr uint16_t kCtrlEnable = 1u << 15, kCtrlFunctionMask = 1u << 14;
constexpr uint32_t kEntryAddrLo = 0, kEntryAddrHi = 4, kEntryData = 8, kEntryControl = 12;
constexpr uint32_t kControlMasked = 1;
}  // namespace

bool Msix::attach(PciFunction* f, char* why, size_t n) {
  PciBus& bus = PciBus::get();
  f_ = f;
  cap_ = bus.find_capability(*f, pcicfg::kCapMsix);
  if (cap_ == 0) return snprintf(why, n, "no MSI-X capability"), false;
  table_size_ = static_cast<uint16_t>((bus.read16(*f, cap_ + 2) & 0x7ff) + 1);
  uint32_t tbl = bus.read32(*f, cap_ + 4), pba = bus.read32(*f, cap_ + 8);
  const PciBar& tb = f->bar[(tbl & 7) < 6 ? (tbl & 7) : 0];
  const PciBar& pb = f->bar[(pba & 7) < 6 ? (pba & 7) : 0];
  if ((tbl & 7) > 5 || (pba & 7) > 5 || tb.addr == 0 || pb.addr == 0 || tb.io || pb.io) {
    cap_ = 0;
    return snprintf(why, n, "MSI-X table/PBA BAR not assigned"), false;
  }
  table_ = tb.addr + (tbl & ~7u);
  pba_ = pb.addr + (pba & ~7u);
  return true;
}

void Msix::enable(bool on) {
  PciBus& bus = PciBus::get();
  uint16_t ctrl = bus.read16(*f_, cap_ + 2);
  ctrl = static_cast<uint16_t>(ctrl & ~kCtrlFunctionMask);
  ctrl =
      on ? static_cast<uint16_t>(ctrl | kCtrlEnable) : static_cast<uint16_t>(ctrl & ~kCtrlEnable);
  if (on) bus.update_command(*f_, pcicfg::kCmdIntxDisable, 0);
  bus.write16(*f_, cap_ + 2, ctrl);
  if (!on) bus.update_command(*f_, 0, pcicfg::kCmdIntxDisable);
}

bool Msix::enabled() const {
  return (PciBus::get().read16(*f_, cap_ + 2) & kCtrlEnable) != 0;
}

void Msix::program(uint16_t entry, uint32_t apic_id, uint8_t vector) {
  uint64_t e = table_ + 16ULL * entry;
  mask(entry, true);
  mmio_write<uint32_t>(e + kEntryAddrLo, 0xfee00000u | (apic_id << 12));
  mmio_write<uint32_t>(e + kEntryAddrHi, 0);
  mmio_write<uint32_t>(e + kEntryData, vector);
  mask(entry, false);
}

void Msix::mask(uint16_t entry, bool masked) {
  uint64_t e = table_ + 16ULL * entry + kEntryControl;
  uint32_t v = mmio_read<uint32_t>(e);
  mmio_write<uint32_t>(e, masked ? (v | kControlMasked) : (v & ~kControlMasked));
}

bool Msix::masked(uint16_t entry) const {
  return vector_control(entry) & kControlMasked;
}

uint32_t Msix::vector_control(uint16_t entry) const {
  return mmio_read<uint32_t>(table_ + 16ULL * entry + kEntryControl);
}

bool Msix::pending(uint16_t entry) const {
  uint32_t word = mmio_read<uint32_t>(pba_ + 4ULL * (entry / 32));
  return (word >> (entry % 32)) & 1;
}

}  // namespace guest
