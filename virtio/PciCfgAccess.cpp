// The pci_cfg window's bounds and its reads and writes.
#include "virtio/PciCfgAccess.h"

#include "kvm/LittleEndian.h"

namespace ember::virtio {

namespace {
// struct virtio_pci_cfg_cap (4.1.4.9): cap.bar at +4, cap.offset at +8, cap.length at +12,
// pci_cfg_data at +16.
constexpr uint16_t kBar = 4, kOffset = 8, kLength = 12, kData = 16;
}  // namespace

bool PciCfgAccess::touchesData(uint16_t offset, uint8_t size) const {
  return pci::touches(offset, size, cap_ + kData, 4);
}

std::optional<PciCfgAccess::Window> PciCfgAccess::window(const pci::PciConfigSpace& config,
                                                         const pci::PciDevice& device) const {
  uint8_t bar = config.get8(cap_ + kBar);
  uint32_t off = config.get32(cap_ + kOffset);
  uint32_t len = config.get32(cap_ + kLength);
  if ((len != 1 && len != 2 && len != 4) || bar >= pci::PciDevice::kBarCount) {
    return std::nullopt;
  }
  const pci::BarSpec& spec = device.bar(bar);
  if (!spec.region || off >= spec.size || len > spec.size - off) {
    return std::nullopt;
  }
  return Window{spec.region.get(), off, len};
}

void PciCfgAccess::load(pci::PciConfigSpace& config, const pci::PciDevice& device) const {
  uint8_t buf[4] = {0, 0, 0, 0};
  if (auto w = window(config, device)) {
    w->region->read(w->offset, std::span<uint8_t>(buf, w->length));
  }
  config.set32(cap_ + kData, loadLe<uint32_t>(buf));
}

void PciCfgAccess::store(const pci::PciConfigSpace& config, const pci::PciDevice& device) const {
  if (auto w = window(config, device)) {
    uint8_t buf[4];
    storeLe<uint32_t>(buf, config.get32(cap_ + kData));
    w->region->write(w->offset, std::span<const uint8_t>(buf, w->length));
  }
}

}  // namespace ember::virtio
