// The modern virtio-pci layout in BAR4 (virtio 1.2, 4.1.4): struct virtio_pci_common_cfg at
// 0x0000, the ISR byte at 0x1000, the device configuration at 0x2000 and the notification
// addresses at 0x3000 (queue_notify_off = queue index, notify_off_multiplier = 4).
#include <array>

#include "kvm/Log.h"
#include "virtio/VirtioPciTransport.h"

namespace ember::virtio {

namespace {
template <typename T>
void put(std::array<uint8_t, common::kSize>& img, uint16_t off, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) img[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
}  // namespace

uint32_t VirtioPciTransport::readCommonLocked(uint64_t offset, uint8_t size) {
  // Build the structure as the driver would see it and return the bytes asked for, so that any
  // width at any offset reads consistently.
  std::array<uint8_t, common::kSize> img{};
  uint64_t features = offeredFeaturesLocked();
  uint32_t feature_word = device_feature_select_ < 2
                              ? static_cast<uint32_t>(features >> (32 * device_feature_select_))
                              : 0;
  uint32_t driver_word =
      driver_feature_select_ < 2
          ? static_cast<uint32_t>(driver_features_ >> (32 * driver_feature_select_))
          : 0;
  put<uint32_t>(img, common::kDeviceFeatureSelect, device_feature_select_);
  put<uint32_t>(img, common::kDeviceFeature, feature_word);
  put<uint32_t>(img, common::kDriverFeatureSelect, driver_feature_select_);
  put<uint32_t>(img, common::kDriverFeature, driver_word);
  put<uint16_t>(img, common::kMsixConfig, config_vector_.load());
  put<uint16_t>(img, common::kNumQueues, static_cast<uint16_t>(queue_cfg_.size()));
  put<uint8_t>(img, common::kDeviceStatus,
               static_cast<uint8_t>(status_ | (needs_reset_ ? status::kNeedsReset : 0)));
  put<uint8_t>(img, common::kConfigGeneration, config_generation_.load());
  put<uint16_t>(img, common::kQueueSelect, queue_select_);
  if (queue_select_ < queue_cfg_.size()) {
    // 4.1.4.3.2: an out-of-range queue_select reads queue_size 0 (and NO_VECTOR, below).
    const QueueConfig& c = queue_cfg_[queue_select_];
    put<uint16_t>(img, common::kQueueSize, c.size);
    put<uint16_t>(img, common::kQueueMsixVector, queue_vectors_[queue_select_].load());
    put<uint16_t>(img, common::kQueueEnable, c.enabled ? 1 : 0);
    put<uint16_t>(img, common::kQueueNotifyOff, queue_select_);
    put<uint64_t>(img, common::kQueueDesc, c.desc);
    put<uint64_t>(img, common::kQueueDriver, c.driver);
    put<uint64_t>(img, common::kQueueDevice, c.device);
  } else {
    put<uint16_t>(img, common::kQueueMsixVector, kNoVector);
  }
  uint32_t v = 0;
  for (uint8_t i = 0; i < size && i < 4 && offset + i < common::kSize; ++i) {
    v |= static_cast<uint32_t>(img[offset + i]) << (8 * i);
  }
  return v;
}

void VirtioPciTransport::writeCommonLocked(uint64_t offset, uint8_t size, uint64_t value) {
  bool queue_ok = queue_select_ < queue_cfg_.size();
  bool frozen = status_ & status::kDriverOk;  // 4.1.4.3.2: queue fields fixed once live
  auto write64half = [&](uint64_t& field, uint16_t base) {
    if (!queue_ok || frozen) return;
    if (size == 8 && offset == base) {
      field = value;
    } else if (size == 4 && offset == base) {
      field = (field & 0xffffffff00000000ULL) | static_cast<uint32_t>(value);
    } else if (size == 4 && offset == base + 4u) {
      field = (field & 0xffffffffULL) | (value << 32);
    }
  };
  switch (offset) {
    case common::kDeviceFeatureSelect:
      if (size == 4) device_feature_select_ = static_cast<uint32_t>(value);
      return;
    case common::kDriverFeatureSelect:
      if (size == 4) driver_feature_select_ = static_cast<uint32_t>(value);
      return;
    case common::kDriverFeature:
      if (size == 4 && driver_feature_select_ < 2 && !(status_ & status::kFeaturesOk)) {
        uint64_t shift = 32ULL * driver_feature_select_;
        driver_features_ = (driver_features_ & ~(0xffffffffULL << shift)) |
                           (static_cast<uint64_t>(static_cast<uint32_t>(value)) << shift);
      }
      return;
    case common::kMsixConfig:
      if (size == 2) config_vector_ = checkedVector(static_cast<uint16_t>(value));
      return;
    case common::kDeviceStatus:
      if (size == 1) writeStatusLocked(static_cast<uint8_t>(value));
      return;
    case common::kQueueSelect:
      if (size == 2) queue_select_ = static_cast<uint16_t>(value);
      return;
    case common::kQueueSize:
      if (size == 2 && queue_ok && !frozen && !queue_cfg_[queue_select_].enabled) {
        queue_cfg_[queue_select_].size = static_cast<uint16_t>(value);  // validated at DRIVER_OK
      }
      return;
    case common::kQueueMsixVector:
      if (size == 2 && queue_ok) {
        queue_vectors_[queue_select_] = checkedVector(static_cast<uint16_t>(value));
      }
      return;
    case common::kQueueEnable:
      if (size == 2 && queue_ok && !frozen && value == 1) {
        queue_cfg_[queue_select_].enabled = true;
      }
      return;
    default:
      break;
  }
  if (offset >= common::kQueueDesc && offset < common::kQueueDriver) {
    write64half(queue_ok ? queue_cfg_[queue_select_].desc : value, common::kQueueDesc);
  } else if (offset >= common::kQueueDriver && offset < common::kQueueDevice) {
    write64half(queue_ok ? queue_cfg_[queue_select_].driver : value, common::kQueueDriver);
  } else if (offset >= common::kQueueDevice && offset < common::kSize) {
    write64half(queue_ok ? queue_cfg_[queue_select_].device : value, common::kQueueDevice);
  }
}

void VirtioPciTransport::modernRead(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    deviceConfigRead(static_cast<uint32_t>(offset - kDeviceOffset), data);
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset < common::kSize && data.size() <= 4) {
    uint32_t v = readCommonLocked(offset, static_cast<uint8_t>(data.size()));
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(v >> (8 * i));
  } else if (offset < common::kSize && data.size() == 8) {
    uint64_t lo = readCommonLocked(offset, 4), hi = readCommonLocked(offset + 4, 4);
    uint64_t v = lo | (hi << 32);
    for (size_t i = 0; i < 8; ++i) data[i] = static_cast<uint8_t>(v >> (8 * i));
  } else if (offset == kIsrOffset) {
    data[0] = isr_.exchange(0);  // 4.1.4.5: reading the ISR clears it
    updateIntx();
  }
}

void VirtioPciTransport::modernWrite(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    deviceConfigWrite(static_cast<uint32_t>(offset - kDeviceOffset), data);
    return;
  }
  if (offset >= kNotifyOffset) {
    // 4.1.4.4: the queue is the one whose notify address was written.
    uint64_t queue = (offset - kNotifyOffset) / kNotifyMultiplier;
    if ((offset - kNotifyOffset) % kNotifyMultiplier == 0) {
      notifyFromRegister(queue);
    }
    return;
  }
  if (offset >= common::kSize || data.size() > 8) {
    return;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < data.size(); ++i) value |= static_cast<uint64_t>(data[i]) << (8 * i);
  std::lock_guard lock(mutex_);
  writeCommonLocked(offset, static_cast<uint8_t>(data.size()), value);
}

}  // namespace ember::virtio
