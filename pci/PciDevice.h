// A PCI function on Ember's root bus: its configuration space and its BARs.
//
// The device declares its BARs (kind, size, the BusDevice that serves the region) before it is
// added to the PciBus; PciDevice sets up the BAR registers so that sizing by all-ones writes
// works (the low bits that encode size read back as zero, the type bits are read-only). The bus
// maps and unmaps regions as the guest moves BARs and toggles decoding, and tells the device via
// barMoved(). configRead/configWrite are virtual so that devices can give capabilities (MSI-X,
// virtio's PCI-cfg window) live behaviour.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "kvm/Bus.h"
#include "kvm/Result.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"
#include "pci/PciConfigSpace.h"

namespace ember::pci {

enum class BarKind { None, Io, Memory32, Memory64 };

struct BarSpec {
  BarKind kind = BarKind::None;
  uint64_t size = 0;  // a power of two (I/O >= 4, memory >= 16)
  bool prefetchable = false;
  std::shared_ptr<BusDevice> region;
};

struct PciIds {
  uint16_t vendor;
  uint16_t device;
  uint16_t subsystem_vendor;
  uint16_t subsystem;
  uint8_t revision;
  uint32_t class_code;  // base << 16 | sub << 8 | prog-if
};

class PciDevice {
 public:
  static constexpr int kBarCount = 6;

  PciDevice(std::string name, const PciIds& ids);
  virtual ~PciDevice() = default;
  PciDevice(const PciDevice&) = delete;
  PciDevice& operator=(const PciDevice&) = delete;

  const std::string& name() const { return name_; }

  // Guest configuration access (offset < 256 and offset+size <= 256 guaranteed by the bus).
  virtual uint32_t configRead(uint16_t offset, uint8_t size);
  virtual void configWrite(uint16_t offset, uint8_t size, uint32_t value);

  // Declares BAR `index` (a 64-bit BAR also occupies index+1). Call before adding to the bus.
  void setBar(int index, BarSpec spec);
  const BarSpec& bar(int index) const { return bars_[index]; }
  // The address currently programmed in BAR `index` (both halves for a 64-bit BAR).
  uint64_t barAddress(int index) const;
  // Firmware-style assignment by the VMM (not a guest write).
  void setBarAddress(int index, uint64_t address);

  uint16_t command() const { return config_.get16(cfg::kCommand); }
  void setCommand(uint16_t value) { config_.set16(cfg::kCommand, value); }

  // The bus (un)mapped BAR `index`: the region is now at `address`, or nowhere.
  virtual void barMoved(int /*index*/, std::optional<uint64_t> /*address*/) {}
  // The command register changed (decode or bus-master bits).
  virtual void commandChanged(uint16_t /*old_value*/, uint16_t /*new_value*/) {}
  // Firmware's record of the IOAPIC input INTx is wired to (Interrupt Line, 0x3c).
  void setInterruptLine(uint8_t gsi) { config_.set8(cfg::kInterruptLine, gsi); }
  // INTx: the slot this device sits in is assigned when it is added to the bus.
  void setSlot(uint8_t slot) { slot_ = slot; }
  uint8_t slot() const { return slot_; }

  // A snapshot (issue 13), while the VM is paused: what the device holds beyond its
  // configuration header, which PciBus saves. The default has nothing. loadState reads
  // untrusted bytes (errors are the reader's or the result's) into a device built as the saved
  // one was, with its header already restored.
  virtual Result<void> saveState(StateWriter& /*w*/) { return okResult(); }
  virtual Result<void> loadState(StateReader& /*r*/) { return okResult(); }

 protected:
  PciConfigSpace config_;

 private:
  std::string name_;
  std::array<BarSpec, kBarCount> bars_{};
  uint8_t slot_ = 0;
};

// Returns whether a config write at [offset, offset+size) touches [field, field+len).
inline bool touches(uint16_t offset, uint8_t size, uint16_t field, uint16_t len) {
  return offset < field + len && field < offset + size;
}

}  // namespace ember::pci
