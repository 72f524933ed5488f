// The modern common configuration structure in BAR4 (virtio 1.2, 4.1.4.3 struct
// virtio_pci_common_cfg). The transport places it at 0x0000 of BAR4, next to the ISR byte
// (0x1000), the device configuration (0x2000) and the notification addresses (0x3000).
#include <array>

#include "kvm/LittleEndian.h"
#include "virtio/VirtioPciFaces.h"

namespace ember::virtio {

namespace {

// The structure as the driver would see it now.
std::array<uint8_t, common::kSize> commonImage(const DriverState& s, const FaceContext& c) {
  std::array<uint8_t, common::kSize> img{};
  auto put = [&img]<typename T>(uint16_t off, T v) {
    storeLe<T>(std::span(img).subspan(off, sizeof(T)), v);
  };
  uint64_t features = s.offeredFeatures(c.device_features);
  uint32_t device_word = s.device_feature_select < 2
                             ? static_cast<uint32_t>(features >> (32 * s.device_feature_select))
                             : 0;
  uint32_t driver_word =
      s.driver_feature_select < 2
          ? static_cast<uint32_t>(s.driver_features >> (32 * s.driver_feature_select))
          : 0;
  put(common::kDeviceFeatureSelect, s.device_feature_select);
  put(common::kDeviceFeature, device_word);
  put(common::kDriverFeatureSelect, s.driver_feature_select);
  put(common::kDriverFeature, driver_word);
  put(common::kMsixConfig, s.config_vector);
  put(common::kNumQueues, static_cast<uint16_t>(s.queues.size()));
  put(common::kDeviceStatus,
      static_cast<uint8_t>(s.status | (c.needs_reset ? status::kNeedsReset : 0)));
  put(common::kConfigGeneration, c.config_generation);
  put(common::kQueueSelect, s.queue_select);
  if (const QueueState* q = s.selectedQueue()) {
    put(common::kQueueSize, q->size);
    put(common::kQueueMsixVector, q->vector);
    put(common::kQueueEnable, static_cast<uint16_t>(q->enabled ? 1 : 0));
    put(common::kQueueNotifyOff, s.queue_select);
    put(common::kQueueDesc, q->desc);
    put(common::kQueueDriver, q->driver);
    put(common::kQueueDevice, q->device);
  } else {
    // 4.1.4.3.2: an out-of-range queue_select reads queue_size 0 and NO_VECTOR (case 16).
    put(common::kQueueMsixVector, kNoVector);
  }
  return img;
}

// A write to one of the 64-bit ring address fields at `base`: whole, or either 32-bit half.
void writeAddress(uint64_t& field, uint64_t base, uint64_t offset, size_t size, uint64_t value) {
  if (size == 8 && offset == base) {
    field = value;
  } else if (size == 4 && offset == base) {
    field = (field & 0xffffffff00000000ULL) | static_cast<uint32_t>(value);
  } else if (size == 4 && offset == base + 4) {
    field = (field & 0xffffffffULL) | (value << 32);
  }
}

}  // namespace

uint64_t readCommonConfig(const DriverState& s, const FaceContext& c, uint64_t offset,
                          size_t size) {
  if (offset >= common::kSize) {
    return 0;
  }
  auto img = commonImage(s, c);
  return loadLe<uint64_t>(std::span<const uint8_t>(img).subspan(offset).first(
      std::min<size_t>(size, common::kSize - offset)));
}

FaceWrite writeCommonConfig(DriverState& s, const FaceContext& c, uint64_t offset, size_t size,
                            uint64_t value) {
  FaceWrite w;
  QueueState* q = s.selectedQueue();
  bool frozen = s.driverOk();  // 4.1.4.3.2: a queue's fields are fixed once the device is live
  switch (offset) {
    case common::kDeviceFeatureSelect:
      if (size == 4) s.device_feature_select = static_cast<uint32_t>(value);
      return w;
    case common::kDriverFeatureSelect:
      if (size == 4) s.driver_feature_select = static_cast<uint32_t>(value);
      return w;
    case common::kDriverFeature:
      if (size == 4 && s.driver_feature_select < 2 && !(s.status & status::kFeaturesOk)) {
        uint64_t shift = 32ULL * s.driver_feature_select;
        s.driver_features = (s.driver_features & ~(0xffffffffULL << shift)) |
                            (static_cast<uint64_t>(static_cast<uint32_t>(value)) << shift);
      }
      return w;
    case common::kMsixConfig:
      if (size == 2) {
        s.config_vector = checkedVector(static_cast<uint16_t>(value), c.vectors);
        w.action = FaceWrite::Action::ConfigVector;
      }
      return w;
    case common::kDeviceStatus:
      if (size == 1) {
        w.action = FaceWrite::Action::Status;
        w.status = s.writeStatus(static_cast<uint8_t>(value), c.device_features);
      }
      return w;
    case common::kQueueSelect:
      if (size == 2) s.queue_select = static_cast<uint16_t>(value);
      return w;
    case common::kQueueSize:
      if (size == 2 && q != nullptr && !frozen && !q->enabled) {
        q->size = static_cast<uint16_t>(value);  // validated at DRIVER_OK
      }
      return w;
    case common::kQueueMsixVector:
      if (size == 2 && q != nullptr) {
        q->vector = checkedVector(static_cast<uint16_t>(value), c.vectors);
        w.action = FaceWrite::Action::QueueVector;
        w.queue = s.queue_select;
      }
      return w;
    case common::kQueueEnable:
      if (size == 2 && q != nullptr && !frozen && value == 1) {
        q->enabled = true;
      }
      return w;
    default:
      break;
  }
  if (q == nullptr || frozen) {
    return w;
  }
  if (offset >= common::kQueueDesc && offset < common::kQueueDriver) {
    writeAddress(q->desc, common::kQueueDesc, offset, size, value);
  } else if (offset >= common::kQueueDriver && offset < common::kQueueDevice) {
    writeAddress(q->driver, common::kQueueDriver, offset, size, value);
  } else if (offset >= common::kQueueDevice && offset < common::kSize) {
    writeAddress(q->device, common::kQueueDevice, offset, size, value);
  }
  return w;
}

}  // namespace ember::virtio
