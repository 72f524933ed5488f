// A PCI function's 256-byte type-0 configuration space with per-bit write semantics.
//
// Every byte has a write mask (which bits the guest may change) and a write-1-to-clear mask
// (status error bits), so a guest write of any width at any offset, even one spanning several
// fields, changes only the writable bits (hostile-guest case 22). The device model sets up the
// initial contents and masks; reads return the bytes as stored.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace ember::pci {

// Standard header offsets (PCI Local Bus 3.0, section 6.1).
namespace cfg {
constexpr uint16_t kVendorId = 0x00, kDeviceId = 0x02, kCommand = 0x04, kStatus = 0x06,
                   kRevision = 0x08, kClassProg = 0x09, kClassSub = 0x0a, kClassBase = 0x0b,
                   kHeaderType = 0x0e, kBar0 = 0x10, kSubsystemVendorId = 0x2c, kSubsystemId = 0x2e,
                   kRomBar = 0x30, kCapabilitiesPtr = 0x34, kInterruptLine = 0x3c,
                   kInterruptPin = 0x3d;
constexpr uint16_t kCommandIo = 1 << 0, kCommandMemory = 1 << 1, kCommandBusMaster = 1 << 2,
                   kCommandIntxDisable = 1 << 10;
constexpr uint16_t kStatusInterrupt = 1 << 3, kStatusCapList = 1 << 4;
constexpr uint8_t kCapIdMsix = 0x11, kCapIdVendor = 0x09;
constexpr size_t kSize = 256;
}  // namespace cfg

class PciConfigSpace {
 public:
  // Guest access: `offset + size` within the space (larger offsets are handled by the caller).
  uint32_t read(uint16_t offset, uint8_t size) const;
  void write(uint16_t offset, uint8_t size, uint32_t value);

  // Device-side set-up and state (no masks applied).
  uint8_t get8(uint16_t offset) const { return data_[offset]; }
  uint16_t get16(uint16_t offset) const;
  uint32_t get32(uint16_t offset) const;
  void set8(uint16_t offset, uint8_t v) { data_[offset] = v; }
  void set16(uint16_t offset, uint16_t v);
  void set32(uint16_t offset, uint32_t v);
  void setWritable(uint16_t offset, uint8_t size, uint32_t mask);
  void setWriteOneToClear(uint16_t offset, uint8_t size, uint32_t mask);

  // Appends a capability (id, next pointer, then `body`) to the list and returns its offset.
  // The list lives in 0x40-0xff; returns 0 when it does not fit.
  uint8_t addCapability(uint8_t id, std::span<const uint8_t> body);

 private:
  std::array<uint8_t, cfg::kSize> data_{};
  std::array<uint8_t, cfg::kSize> wmask_{};
  std::array<uint8_t, cfg::kSize> w1c_{};
  uint8_t next_cap_ = 0x40;
  uint8_t last_cap_ = 0;
};

}  // namespace ember::pci
