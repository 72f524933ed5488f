// MSI-X for one PCI function (PCI Local Bus 3.0 section 6.8.2): the capability's Message Control
// (table size, Function Mask, MSI-X Enable), the table (16-byte entries: message address, upper
// address, data, vector control with its per-vector mask bit) and the Pending Bit Array, both in
// memory BARs located through the capability's BIR/offset fields. Messages target the local
// APIC: address 0xfee00000 | apic_id << 12, data = IDT vector (fixed delivery, edge).
#pragma once

#include "pci.h"

namespace guest {

class Msix {
 public:
  // Locates the capability, table and PBA (after the BARs were assigned). False when absent.
  bool attach(PciFunction* f, char* why, size_t n);
  bool attached() const { return cap_ != 0; }
  uint16_t table_size() const { return table_size_; }

  // MSI-X Enable on or off; Function Mask cleared. With MSI-X on, INTx Disable is set too (as
  // Linux does); with it off INTx Disable is cleared so that INTx can be used.
  void enable(bool on);
  bool enabled() const;
  // Programs entry `entry` (masked while it changes) to deliver `vector` to the local APIC
  // `apic_id`, then unmasks it.
  void program(uint16_t entry, uint32_t apic_id, uint8_t vector);
  void mask(uint16_t entry, bool masked);
  bool masked(uint16_t entry) const;
  bool pending(uint16_t entry) const;
  uint32_t vector_control(uint16_t entry) const;
  uint64_t table_address() const { return table_; }

 private:
  PciFunction* f_ = nullptr;
  uint8_t cap_ = 0;
  uint16_t table_size_ = 0;
  uint64_t table_ = 0, pba_ = 0;
};

}  // namespace guest
