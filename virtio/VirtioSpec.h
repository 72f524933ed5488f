// Constants from the virtio 1.2 specification (OASIS virtio v1.2, cs01) used by the transport,
// the queues and the devices. Section numbers are given beside each group.
#pragma once

#include <cstdint>

namespace ember::virtio {

// 2.1 Device status field.
namespace status {
constexpr uint8_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64,
                  kFailed = 128;
}

// 6 Reserved feature bits.
namespace feature {
constexpr uint64_t kIndirectDesc = 1ULL << 28;  // VIRTIO_F_INDIRECT_DESC
constexpr uint64_t kEventIdx = 1ULL << 29;      // VIRTIO_F_EVENT_IDX
constexpr uint64_t kVersion1 = 1ULL << 32;      // VIRTIO_F_VERSION_1
}  // namespace feature

// 5 Device types.
namespace device_type {
constexpr uint16_t kNet = 1, kBlock = 2, kConsole = 3, kEntropy = 4, kBalloon = 5, kVsock = 19,
                   kFileSystem = 26;
}

// 2.7.5 The virtqueue descriptor table.
namespace desc {
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;
constexpr uint16_t kKnownFlags = kNext | kWrite | kIndirect;
}  // namespace desc

// 2.7.6 / 2.7.8 ring flags.
constexpr uint16_t kAvailNoInterrupt = 1;
constexpr uint16_t kUsedNoNotify = 1;

// Byte offsets inside the split rings. 2.7.6 available ring: flags, idx, ring[size],
// used_event; 2.7.8 used ring: flags, idx, ring[size] of 8-byte elements, avail_event.
namespace ring {
constexpr uint64_t kFlags = 0, kIdx = 2, kEntries = 4;
constexpr uint64_t kUsedElemSize = 8;
}  // namespace ring

// 4.1.4.3 / 4.1.5.1: a vector value meaning "no MSI-X vector".
constexpr uint16_t kNoVector = 0xffff;

// 4.1.4 PCI capability cfg_type values.
namespace pci_cap {
constexpr uint8_t kCommon = 1, kNotify = 2, kIsr = 3, kDevice = 4, kPciCfg = 5;
}

// 4.1.2 PCI device IDs: transitional 0x1000 + (type - 1) for the classic devices, modern
// 0x1040 + type.
constexpr uint16_t kVendorId = 0x1af4;
constexpr uint16_t transitionalDeviceId(uint16_t type) {
  switch (type) {
    case device_type::kNet:
      return 0x1000;
    case device_type::kBlock:
      return 0x1001;
    case device_type::kBalloon:
      return 0x1002;
    case device_type::kConsole:
      return 0x1003;
    case device_type::kEntropy:
      return 0x1005;
    default:
      return static_cast<uint16_t>(0x1040 + type);
  }
}

// The name Ember gives a device type in its log and run record (virtio-blk, virtio-net, ...)
// and the short prefix of its device ids there (blk0, net0, ...).
struct DeviceTypeNames {
  uint16_t type;
  const char* name;
  const char* id_prefix;
};
inline constexpr DeviceTypeNames kDeviceTypeNames[] = {
    {device_type::kNet, "virtio-net", "net"},
    {device_type::kBlock, "virtio-blk", "blk"},
    {device_type::kConsole, "virtio-console", "console"},
    {device_type::kEntropy, "virtio-rng", "rng"},
    {device_type::kBalloon, "virtio-balloon", "balloon"},
    {device_type::kVsock, "virtio-vsock", "vsock"},
    {device_type::kFileSystem, "virtio-fs", "fs"},
};
constexpr DeviceTypeNames deviceTypeNames(uint16_t type) {
  for (const auto& n : kDeviceTypeNames) {
    if (n.type == type) return n;
  }
  return DeviceTypeNames{type, "virtio", "virtio"};
}
constexpr const char* deviceTypeName(uint16_t type) {
  return deviceTypeNames(type).name;
}
constexpr const char* deviceIdPrefix(uint16_t type) {
  return deviceTypeNames(type).id_prefix;
}

// 4.1.5.1 Legacy interface register offsets in the I/O BAR.
namespace legacy {
constexpr uint16_t kHostFeatures = 0, kGuestFeatures = 4, kQueuePfn = 8, kQueueSize = 12,
                   kQueueSelect = 14, kQueueNotify = 16, kStatus = 18, kIsr = 19,
                   kConfigVector = 20, kQueueVector = 22;
constexpr uint16_t kHeaderSize = 20, kHeaderSizeMsix = 24;
constexpr uint64_t kQueueAlign = 4096;  // 2.7.2 legacy interfaces: used ring page-aligned
constexpr uint32_t kPfnShift = 12;
}  // namespace legacy

// 4.1.4.3 struct virtio_pci_common_cfg offsets.
namespace common {
constexpr uint16_t kDeviceFeatureSelect = 0x00, kDeviceFeature = 0x04, kDriverFeatureSelect = 0x08,
                   kDriverFeature = 0x0c, kMsixConfig = 0x10, kNumQueues = 0x12,
                   kDeviceStatus = 0x14, kConfigGeneration = 0x15, kQueueSelect = 0x16,
                   kQueueSize = 0x18, kQueueMsixVector = 0x1a, kQueueEnable = 0x1c,
                   kQueueNotifyOff = 0x1e, kQueueDesc = 0x20, kQueueDriver = 0x28,
                   kQueueDevice = 0x30, kSize = 0x38;
}

// 2.7.x ISR status bits (4.1.4.5).
constexpr uint8_t kIsrQueue = 1, kIsrConfig = 2;

}  // namespace ember::virtio
