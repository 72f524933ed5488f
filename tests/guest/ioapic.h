// The I/O APIC (Intel 82093AA datasheet): register select at +0x00 and window at +0x10 of its
// MMIO page (0xfec00000), version register 1 (maximum redirection entry in bits 23:16), and the
// 64-bit redirection entries at registers 0x10 + 2n: vector, delivery mode, destination mode,
// polarity, trigger mode, mask, destination APIC ID. Used for INTx of PCI devices.
#pragma once

#include "guest.h"

namespace guest {

class Ioapic {
 public:
  static constexpr uint64_t kBase = 0xfec00000;
  // Number of redirection entries (from the version register), 0 when nothing answers.
  static uint32_t entries();
  // Level-triggered, active-low (how PCI INTx is wired), fixed delivery to `apic_id`.
  static void route_level(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool masked);
  // Edge-triggered, active-high (how an ISA interrupt is wired), fixed delivery to `apic_id`.
  static void route_edge(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool masked);
  static void mask(uint32_t gsi, bool masked);
  static uint64_t entry(uint32_t gsi);

 private:
  static uint32_t read(uint32_t reg);
  static void write(uint32_t reg, uint32_t v);
};

}  // namespace guest
