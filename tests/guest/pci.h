// PCI for the test guest, the way a kernel does it at boot (PCI Local Bus 3.0): configuration
// access through mechanism #1 (ports 0xcf8/0xcfc, section 3.2.2.3.2) or ECAM (the PCIe memory-
// mapped form; base from `pci.ecam=`, else the ACPI MCFG table, else 0xe0000000), enumeration of
// bus 0 including multi-function devices, BAR sizing (section 6.2.5.1: all-ones write, restore)
// and re-assignment of every BAR of every non-bridge function to addresses of our own choosing
// with decoding disabled while they move, and capability-list walking (section 6.7). The
// mechanism comes from the command line: `pci=cf8` (default) or `pci=ecam`.
#pragma once

#include "guest.h"

namespace guest {

namespace pcicfg {  // type-0 header offsets and bits (PCI 3.0 section 6.1, 6.2)
constexpr uint16_t kVendorId = 0x00, kDeviceId = 0x02, kCommand = 0x04, kStatus = 0x06,
                   kRevision = 0x08, kProgIf = 0x09, kSubclass = 0x0a, kClass = 0x0b,
                   kHeaderType = 0x0e, kBar0 = 0x10, kSubsysVendor = 0x2c, kSubsysId = 0x2e,
                   kCapPtr = 0x34, kIntLine = 0x3c, kIntPin = 0x3d;
constexpr uint16_t kCmdIo = 1 << 0, kCmdMemory = 1 << 1, kCmdMaster = 1 << 2,
                   kCmdIntxDisable = 1 << 10;
constexpr uint16_t kStatusIntx = 1 << 3, kStatusCapList = 1 << 4;
constexpr uint8_t kCapMsix = 0x11, kCapVendor = 0x09;
}  // namespace pcicfg

// Where the driver places BARs: I/O inside [kIoStart, kIoEnd), memory (32- and 64-bit) inside
// [kMemStart, kMemEnd), allocated top-down so that they leave the VMM's bottom-up assignment.
constexpr uint32_t kPciIoStart = 0xc000, kPciIoEnd = 0x10000;
constexpr uint64_t kPciMemStart = 0xc0000000, kPciMemEnd = 0xe0000000;

struct PciBar {
  uint64_t addr = 0;   // as programmed by this driver (0: not assigned)
  uint64_t found = 0;  // as found before sizing (assigned by the VMM or firmware)
  uint64_t size = 0;   // 0: not implemented
  bool io = false, is64 = false, prefetchable = false;
};

struct PciFunction {
  uint8_t bus = 0, dev = 0, fn = 0;
  uint16_t vendor = 0, device = 0, subsys_vendor = 0, subsys_id = 0;
  uint8_t class_code = 0, subclass = 0, prog_if = 0, revision = 0, header_type = 0;
  uint8_t int_line = 0, int_pin = 0;
  PciBar bar[6];
  bool relocated = false;  // its BARs were given new addresses and decoding re-enabled
  char error[96] = {};     // what went wrong during sizing or assignment ("" when nothing)
  bool is_bridge() const { return class_code == 0x06; }
};

class PciBus {
 public:
  enum class Mechanism : uint8_t { Cf8, Ecam };
  static constexpr size_t kMaxFunctions = 32;

  // The bus, enumerated (sizing and relocating BARs) on first use.
  static PciBus& get();

  Mechanism mechanism() const { return mech_; }
  const char* mechanism_name() const { return mech_ == Mechanism::Cf8 ? "cf8" : "ecam"; }
  uint64_t ecam_base() const { return ecam_; }
  const char* ecam_source() const { return ecam_source_; }
  size_t count() const { return count_; }
  PciFunction& at(size_t i) { return fns_[i]; }
  PciFunction* find(uint8_t dev, uint8_t fn);
  const char* error() const { return error_; }  // bus-level problem (e.g. out of BAR space)

  // Configuration access; offset + size stays within the function's space (256 bytes for
  // mechanism #1, 4096 for ECAM). Absent functions read all ones.
  uint32_t read(uint8_t dev, uint8_t fn, uint16_t off, uint8_t size) const;
  void write(uint8_t dev, uint8_t fn, uint16_t off, uint8_t size, uint32_t value) const;
  uint8_t read8(const PciFunction& f, uint16_t off) const { return read(f.dev, f.fn, off, 1); }
  uint16_t read16(const PciFunction& f, uint16_t off) const { return read(f.dev, f.fn, off, 2); }
  uint32_t read32(const PciFunction& f, uint16_t off) const { return read(f.dev, f.fn, off, 4); }
  void write8(const PciFunction& f, uint16_t off, uint8_t v) const {
    write(f.dev, f.fn, off, 1, v);
  }
  void write16(const PciFunction& f, uint16_t off, uint16_t v) const {
    write(f.dev, f.fn, off, 2, v);
  }
  void write32(const PciFunction& f, uint16_t off, uint32_t v) const {
    write(f.dev, f.fn, off, 4, v);
  }
  void update_command(const PciFunction& f, uint16_t set, uint16_t clear) const;

  // The offset of the first capability `id` after `after` (0: from the start), or 0.
  uint8_t find_capability(const PciFunction& f, uint8_t id, uint8_t after = 0) const;
  // Walks the capability list (and, with ECAM, the extended list at 0x100): every pointer inside
  // the device-specific area and dword aligned, no loops, terminated; MSI-X table and PBA inside
  // an implemented memory BAR. Describes the first problem in `why`.
  bool check_capabilities(const PciFunction& f, char* why, size_t n) const;
  // Whether `addr` lies in a BAR this driver assigned (used to avoid probing reused addresses).
  bool address_assigned(uint64_t addr, bool io) const;

 private:
  void enumerate();
  void probe_function(uint8_t dev, uint8_t fn);
  void size_bars(PciFunction& f);
  void assign_bars();
  void program_bar(PciFunction& f, int i);

  Mechanism mech_ = Mechanism::Cf8;
  uint64_t ecam_ = 0;
  const char* ecam_source_ = nullptr;
  bool enumerated_ = false;
  size_t count_ = 0;
  PciFunction fns_[kMaxFunctions];
  char error_[96] = {};
};

}  // namespace guest
