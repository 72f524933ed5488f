// Where a transitional virtio-pci device puts things (virtio 1.2, 4.1): its PCI identity, its
// BARs and the capability list that tells a driver about them.
//
//   BAR0  I/O     legacy interface (4.1.5.1): features, queue PFN/size/select/notify, status,
//                 ISR, MSI-X vectors (when MSI-X is on), then the device configuration
//   BAR1  memory  MSI-X table (offset 0) and PBA (offset 0x800)
//   BAR4  memory  (64-bit) modern interface: common cfg 0x0000, ISR 0x1000, device cfg 0x2000,
//                 notify 0x3000 (queue i at 0x3000 + 4*i; notify_off_multiplier 4)
//
// Capabilities: MSI-X, then the virtio vendor capabilities (common, notify, ISR, device, PCI cfg
// access).
#pragma once

#include <cstdint>

#include "kvm/Vm.h"
#include "pci/PciConfigSpace.h"
#include "pci/PciDevice.h"

namespace ember::virtio {

namespace layout {
constexpr int kLegacyBar = 0, kMsixBar = 1, kModernBar = 4;
constexpr uint64_t kModernBarSize = 0x4000;
constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000, kDeviceOffset = 0x2000,
                   kNotifyOffset = 0x3000;
constexpr uint32_t kNotifyMultiplier = 4;
constexpr uint64_t kMsixTableOffset = 0, kMsixPbaOffset = 0x800, kMsixBarSize = 0x1000;
}  // namespace layout

// 4.1.2.1: the transitional device ID of the virtio type, the type as the subsystem ID, and the
// class code of the device kind.
pci::PciIds virtioPciIds(uint16_t device_type);

// The legacy I/O BAR: the header with MSI-X registers and the device configuration, rounded up
// to a power of two.
uint64_t legacyBarSize(uint32_t config_size);

// Where queue `queue`'s kick lands, for its ioeventfd: a 2-byte write of the queue index to the
// legacy queue-notify register (4.1.5.1), or to the queue's own notify address on the modern
// face (4.1.4.4: queue_notify_off = the queue index).
kvm::IoEventAddress notifyAddress(bool legacy, uint64_t bar_base, uint16_t queue);

// Where the capabilities the transport gives live behaviour to ended up.
struct CapabilityOffsets {
  uint8_t msix = 0;     // the MSI-X capability (message control at +2)
  uint8_t pci_cfg = 0;  // the 4.1.4.9 PCI configuration access capability
};

// Adds the MSI-X capability (PCI 3.0, 6.8.2) for `vectors` vectors and the virtio capabilities
// (4.1.4) for `queues` queues and `config_size` bytes of device configuration, with the
// driver-writable fields marked writable.
CapabilityOffsets addVirtioCapabilities(pci::PciConfigSpace& config, uint16_t vectors,
                                        uint16_t queues, uint32_t config_size);

}  // namespace ember::virtio
