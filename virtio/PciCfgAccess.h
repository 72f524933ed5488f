// The PCI configuration access capability (virtio 1.2, 4.1.4.9 VIRTIO_PCI_CAP_PCI_CFG): a window
// in configuration space onto the device's BARs, for drivers that cannot map them. The driver
// writes bar, offset and length, then reads or writes pci_cfg_data, which reads or writes
// `length` (1, 2 or 4) bytes of that BAR at that offset. A window that is not wholly inside an
// implemented BAR reads as zero and writes nothing.
#pragma once

#include <cstdint>
#include <optional>

#include "kvm/Bus.h"
#include "pci/PciConfigSpace.h"
#include "pci/PciDevice.h"

namespace ember::virtio {

class PciCfgAccess {
 public:
  // `cap` is the capability's offset in configuration space.
  explicit PciCfgAccess(uint8_t cap = 0) : cap_(cap) {}

  // Whether a configuration access at [offset, offset + size) touches pci_cfg_data.
  bool touchesData(uint16_t offset, uint8_t size) const;
  // Before such a read: pci_cfg_data takes the window's bytes.
  void load(pci::PciConfigSpace& config, const pci::PciDevice& device) const;
  // After such a write: pci_cfg_data goes to the window.
  void store(const pci::PciConfigSpace& config, const pci::PciDevice& device) const;

 private:
  struct Window {
    BusDevice* region;
    uint32_t offset;
    uint32_t length;
  };
  // The one bounds check of the window, for both directions.
  std::optional<Window> window(const pci::PciConfigSpace& config,
                               const pci::PciDevice& device) const;

  uint8_t cap_;
};

}  // namespace ember::virtio
