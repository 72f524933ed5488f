// The PCI identity and capability list of a virtio-pci device.
#include "virtio/VirtioPciLayout.h"

#include <algorithm>
#include <array>
#include <vector>

#include "kvm/LittleEndian.h"
#include "pci/Msix.h"
#include "virtio/VirtioSpec.h"

namespace ember::virtio {

using namespace layout;

pci::PciIds virtioPciIds(uint16_t device_type) {
  uint32_t class_code = 0xff0000;  // unclassified
  switch (device_type) {
    case device_type::kNet:
      class_code = 0x020000;
      break;
    case device_type::kBlock:
      class_code = 0x010000;
      break;
    case device_type::kConsole:
      class_code = 0x078000;
      break;
    case device_type::kFileSystem:
      class_code = 0x018000;  // mass storage, other
      break;
    default:
      break;
  }
  return pci::PciIds{kVendorId, transitionalDeviceId(device_type), kVendorId, device_type, 0,
                     class_code};
}

uint64_t legacyBarSize(uint32_t config_size) {
  uint64_t need = legacy::kHeaderSizeMsix + config_size;
  uint64_t size = 0x40;
  while (size < need) size <<= 1;
  return size;
}

kvm::IoEventAddress notifyAddress(bool legacy, uint64_t bar_base, uint16_t queue) {
  if (legacy) {
    return kvm::IoEventAddress{true, bar_base + legacy::kQueueNotify, 2, queue};
  }
  return kvm::IoEventAddress{false, bar_base + kNotifyOffset + kNotifyMultiplier * queue, 2, queue};
}

namespace {

// A struct virtio_pci_cap body (4.1.4) after cap_vndr/cap_next: cap_len, cfg_type, bar, id,
// padding, offset, length, then `extra` bytes (notify_off_multiplier, pci_cfg_data).
std::vector<uint8_t> virtioCap(uint8_t cfg_type, uint8_t bar, uint32_t offset, uint32_t length,
                               size_t extra = 0) {
  std::vector<uint8_t> b(14 + extra, 0);
  b[0] = static_cast<uint8_t>(16 + extra);
  b[1] = cfg_type;
  b[2] = bar;
  storeLe<uint32_t>(std::span(b).subspan(6, 4), offset);
  storeLe<uint32_t>(std::span(b).subspan(10, 4), length);
  return b;
}

}  // namespace

CapabilityOffsets addVirtioCapabilities(pci::PciConfigSpace& config, uint16_t vectors,
                                        uint16_t queues, uint32_t config_size) {
  CapabilityOffsets at;
  // MSI-X (PCI 3.0, 6.8.2): message control (table size - 1), table offset/BIR, PBA offset/BIR.
  std::array<uint8_t, 10> msix{};
  storeLe<uint16_t>(std::span(msix).subspan(0, 2), static_cast<uint16_t>(vectors - 1));
  storeLe<uint32_t>(std::span(msix).subspan(2, 4),
                    static_cast<uint32_t>(kMsixTableOffset) | kMsixBar);
  storeLe<uint32_t>(std::span(msix).subspan(6, 4),
                    static_cast<uint32_t>(kMsixPbaOffset) | kMsixBar);
  at.msix = config.addCapability(pci::cfg::kCapIdMsix, msix);
  config.setWritable(at.msix + 2, 2,
                     pci::MsixState::kControlEnable | pci::MsixState::kControlFunctionMask);

  config.addCapability(pci::cfg::kCapIdVendor,
                       virtioCap(pci_cap::kCommon, kModernBar, kCommonOffset, common::kSize));
  auto notify = virtioCap(pci_cap::kNotify, kModernBar, kNotifyOffset,
                          std::max<uint32_t>(4, kNotifyMultiplier * queues), 4);
  storeLe<uint32_t>(std::span(notify).subspan(14, 4), kNotifyMultiplier);
  config.addCapability(pci::cfg::kCapIdVendor, notify);
  config.addCapability(pci::cfg::kCapIdVendor, virtioCap(pci_cap::kIsr, kModernBar, kIsrOffset, 1));
  config.addCapability(
      pci::cfg::kCapIdVendor,
      virtioCap(pci_cap::kDevice, kModernBar, kDeviceOffset, std::max<uint32_t>(4, config_size)));
  // 4.1.4.9: bar, offset and length are driver-writable; pci_cfg_data (4 bytes) is a window
  // onto the BAR.
  at.pci_cfg =
      config.addCapability(pci::cfg::kCapIdVendor, virtioCap(pci_cap::kPciCfg, 0, 0, 0, 4));
  config.setWritable(at.pci_cfg + 4, 1, 0xff);
  config.setWritable(at.pci_cfg + 8, 4, 0xffffffff);
  config.setWritable(at.pci_cfg + 12, 4, 0xffffffff);
  config.setWritable(at.pci_cfg + 16, 4, 0xffffffff);
  return at;
}

}  // namespace ember::virtio
