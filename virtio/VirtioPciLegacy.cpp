// The legacy virtio-pci register layout in BAR0 (virtio 1.2, 4.1.5.1 "Legacy Interfaces"):
//   0 host features (32)   4 guest features (32)   8 queue PFN (32)   12 queue size (16, RO)
//   14 queue select (16)  16 queue notify (16)    18 status (8)       19 ISR (8, read-to-clear)
//   with MSI-X enabled: 20 config vector (16), 22 queue vector (16); device config follows at
//   20, or at 24 when MSI-X is enabled.
#include <fmt/format.h>

#include "virtio/VirtioPciFaces.h"

namespace ember::virtio {

uint32_t readLegacyRegister(const DriverState& s, const FaceContext& c, uint64_t offset,
                            size_t size) {
  const QueueState* q = s.selectedQueue();
  if (offset == legacy::kHostFeatures && size == 4) {
    return static_cast<uint32_t>(c.device_features);
  }
  if (offset == legacy::kGuestFeatures && size == 4) {
    return static_cast<uint32_t>(s.driver_features);
  }
  if (offset == legacy::kQueuePfn && size == 4) {
    return q ? q->legacy_pfn : 0;
  }
  if (offset == legacy::kQueueSize && size == 2) {
    return q ? q->max_size : 0;
  }
  if (offset == legacy::kQueueSelect && size == 2) {
    return s.queue_select;
  }
  if (offset == legacy::kStatus && size == 1) {
    return s.status | (c.needs_reset ? status::kNeedsReset : 0);
  }
  if (c.msix_enabled && offset == legacy::kConfigVector && size == 2) {
    return s.config_vector;
  }
  if (c.msix_enabled && offset == legacy::kQueueVector && size == 2) {
    return q ? q->vector : kNoVector;
  }
  return 0;
}

FaceWrite writeLegacyRegister(DriverState& s, const FaceContext& c, uint64_t offset, size_t size,
                              uint32_t value) {
  FaceWrite w;
  QueueState* q = s.selectedQueue();
  if (offset == legacy::kGuestFeatures && size == 4) {
    s.legacy = true;
    if (s.driverOk()) {
      return w;
    }
    uint64_t offered = c.device_features & 0xffffffffULL;
    if (value & ~offered) {
      w.warning = fmt::format("legacy driver acked features {:#x} that were not offered; dropped",
                              value & ~offered);
    }
    s.driver_features = value & offered;
  } else if (offset == legacy::kQueuePfn && size == 4) {
    s.legacy = true;
    if (value == 0) {
      // A PFN of 0 resets the device (the legacy driver's way to tear a queue down).
      w.action = FaceWrite::Action::Reset;
    } else if (q != nullptr && !s.driverOk()) {
      // An out-of-range select writes nothing, and the geometry is frozen after DRIVER_OK
      // (hostile-guest case 13).
      DriverState::placeLegacyRings(*q, value);
    }
  } else if (offset == legacy::kQueueSelect && size == 2) {
    s.queue_select = static_cast<uint16_t>(value);
  } else if (offset == legacy::kQueueNotify && size == 2) {
    w.action = FaceWrite::Action::Notify;
    w.queue = static_cast<uint16_t>(value);
  } else if (offset == legacy::kStatus && size == 1) {
    s.legacy = true;
    w.action = FaceWrite::Action::Status;
    w.status = s.writeStatus(static_cast<uint8_t>(value), c.device_features);
  } else if (c.msix_enabled && offset == legacy::kConfigVector && size == 2) {
    s.config_vector = checkedVector(static_cast<uint16_t>(value), c.vectors);
    w.action = FaceWrite::Action::ConfigVector;
  } else if (c.msix_enabled && offset == legacy::kQueueVector && size == 2 && q != nullptr) {
    q->vector = checkedVector(static_cast<uint16_t>(value), c.vectors);
    w.action = FaceWrite::Action::QueueVector;
    w.queue = s.queue_select;
  }
  return w;
}

}  // namespace ember::virtio
