// I/O APIC access (82093AA datasheet sections 3.1-3.2). The register window is indirect, so an
// entry is written low word last when unmasking and masked first when changing.
#include "ioapic.h"

namespace guest {

namespace {
constexpr uint32_t kRegVersion = 1, kRegRedirBase = 0x10;
constexpr uint32_t kMasked = 1u << 16, kLevel = 1u << 15, kActiveLow = 1u << 13;
}  // namespace

uint32_t Ioapic::read(uint32_t reg) {
  mmio_write<uint32_t>(kBase, reg);
  return mmio_read<uint32_t>(kBase + 0x10);
}

void Ioapic::write(uint32_t reg, uint32_t v) {
  mmio_write<uint32_t>(kBase, reg);
  mmio_write<uint32_t>(kBase + 0x10, v);
}

uint32_t Ioapic::entries() {
  uint32_t v = read(kRegVersion);
  if (v == 0xffffffff || v == 0) return 0;
  return ((v >> 16) & 0xff) + 1;
}

void Ioapic::route_level(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool masked) {
  uint32_t reg = kRegRedirBase + 2 * gsi;
  write(reg, kMasked | kLevel | kActiveLow | vector);
  write(reg + 1, apic_id << 24);
  write(reg, (masked ? kMasked : 0) | kLevel | kActiveLow | vector);
}

void Ioapic::route_edge(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool masked) {
  uint32_t reg = kRegRedirBase + 2 * gsi;
  write(reg, kMasked | vector);
  write(reg + 1, apic_id << 24);
  write(reg, (masked ? kMasked : 0) | vector);
}

void Ioapic::mask(uint32_t gsi, bool masked) {
  uint32_t reg = kRegRedirBase + 2 * gsi;
  uint32_t lo = read(reg);
  write(reg, masked ? (lo | kMasked) : (lo & ~kMasked));
}

uint64_t Ioapic::entry(uint32_t gsi) {
  uint32_t reg = kRegRedirBase + 2 * gsi;
  return read(reg) | (static_cast<uint64_t>(read(reg + 1)) << 32);
}

}  // namespace guest
