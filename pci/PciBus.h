// PCI bus 0: the host bridge at 00:00.0, up to 31 more devices, configuration access through
// mechanism #1 (ports 0xcf8/0xcfc) and ECAM (with the decode of each one's address into a
// function's register), and the mapping of every device's BARs onto the port and MMIO buses.
//
// Whenever the guest writes a BAR or a command register, the bus recomputes where each BAR
// should decode and moves regions accordingly. A BAR that would overlap RAM, another device or
// another BAR, or whose decode bit is off, is left unmapped until that changes (hostile-guest
// case 23): the bus maps always reflect the configuration space, never a stale address.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvm/Bus.h"
#include "kvm/Result.h"
#include "pci/PciDevice.h"

namespace ember::pci {

// A configuration register of one function, as the two configuration mechanisms address it.
struct ConfigTarget {
  uint8_t bus;
  uint8_t device;    // 0-31
  uint8_t function;  // 0-7
  uint16_t offset;   // register byte offset: 0-0xff through mechanism #1, 0-0xfff through ECAM
  bool operator==(const ConfigTarget&) const = default;
};

// Mechanism #1 (PCI Local Bus 3.0, section 3.2.2.3.2): CONFIG_ADDRESS (port 0xcf8) holds the
// enable bit (31), bus (23:16), device (15:11), function (10:8) and dword register (7:2); an
// access at CONFIG_DATA + data_byte (port 0xcfc-0xcff) reaches register + data_byte. Returns
// nullopt when the enable bit is clear (CONFIG_DATA then does not decode).
std::optional<ConfigTarget> decodeConfigAddress(uint32_t config_address, uint8_t data_byte);

// ECAM (PCI Express base 3.0, section 7.2.2): an offset into the window is bus << 20 | device
// << 15 | function << 12 | register.
ConfigTarget decodeEcamOffset(uint64_t offset);

class PciBus {
 public:
  static constexpr int kSlots = 32;
  // Returns whether [addr, addr+len) of guest physical space is RAM (BARs may not go there).
  using RamCheck = std::function<bool(uint64_t addr, uint64_t len)>;
  // Called on a reset request through port 0xcf9 (PCI reset control register).
  using ResetHandler = std::function<void()>;

  PciBus(Bus& pio, Bus& mmio, RamCheck is_ram);
  ~PciBus();

  // Places a device in the next free slot (1..31) and maps its BARs if already programmed.
  Result<uint8_t> addDevice(std::shared_ptr<PciDevice> device);

  // Firmware-style assignment: gives every BAR an address from the windows and enables decode.
  Result<void> assignResources(uint64_t io_base, uint64_t io_size, uint64_t mmio_base,
                               uint64_t mmio_size);

  // Configuration access by bus/device/function (bus 0 only; absent functions read all ones).
  uint32_t configRead(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, uint8_t size);
  void configWrite(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, uint8_t size,
                   uint32_t value);

  // BusDevices to register: the mechanism #1 ports (0xcf8, length 8) and the ECAM window.
  std::shared_ptr<BusDevice> configPorts() const;
  std::shared_ptr<BusDevice> ecam() const;
  void setResetHandler(ResetHandler h) { reset_handler_ = std::move(h); }

  std::shared_ptr<PciDevice> deviceAt(uint8_t slot) const;
  // The slots that hold a device, in slot order (slot 0, the host bridge, is not one).
  std::vector<uint8_t> occupiedSlots() const;

  // A snapshot of the device in SLOT (issue 13), with the VM paused: its vendor and device ID (a
  // restore must find the same device there), its configuration header as the guest programmed it
  // (the BAR registers, command, interrupt line), then its own state (PciDevice::saveState).
  Result<void> saveDevice(uint8_t slot, StateWriter& w) const;
  // The reverse, into a bus built as the saved one was, from untrusted bytes: the header goes
  // through the device's own configuration writes, so only what the guest may write changes
  // and the BARs are mapped (or refused) as a guest's writes would be; then the device's state.
  Result<void> loadDevice(uint8_t slot, StateReader& r);

 private:
  class ConfigPorts;
  class Ecam;
  struct Mapping {
    bool mapped = false;
    uint64_t base = 0;
    BarKind kind = BarKind::None;
    uint64_t refused_base = 0;  // last address refused (to warn once per address)
  };

  bool wantsMapping(uint8_t slot, int bar, uint64_t* addr) const;
  void remapAllLocked();
  void unmapLocked(uint8_t slot, int bar);

  Bus& pio_;
  Bus& mmio_;
  RamCheck is_ram_;
  ResetHandler reset_handler_;
  mutable std::recursive_mutex mutex_;
  std::array<std::shared_ptr<PciDevice>, kSlots> devices_{};
  std::array<std::array<Mapping, PciDevice::kBarCount>, kSlots> mappings_{};
  std::shared_ptr<ConfigPorts> config_ports_;
  std::shared_ptr<Ecam> ecam_;
};

// The host bridge at 00:00.0 (class 06/00/00).
class PciHostBridge : public PciDevice {
 public:
  PciHostBridge();
};

}  // namespace ember::pci
