// The legacy virtio-pci register layout in BAR0 (virtio 1.2, 4.1.5.1 "Legacy Interfaces"):
//   0 host features (32)   4 guest features (32)   8 queue PFN (32)   12 queue size (16, RO)
//   14 queue select (16)  16 queue notify (16)    18 status (8)       19 ISR (8, read-to-clear)
//   with MSI-X enabled: 20 config vector (16), 22 queue vector (16); device config follows at
//   20, or at 24 when MSI-X is enabled.
#include "kvm/Log.h"
#include "virtio/VirtioPciTransport.h"

namespace ember::virtio {

namespace {
uint32_t toValue(std::span<const uint8_t> data) {
  uint32_t v = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) v |= static_cast<uint32_t>(data[i]) << (8 * i);
  return v;
}
void fromValue(uint32_t v, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) data[i] = i < 4 ? static_cast<uint8_t>(v >> (8 * i)) : 0;
}
}  // namespace

void VirtioPciTransport::legacyRead(uint64_t offset, std::span<uint8_t> data) {
  bool msix = msix_.enabled();
  uint64_t header = msix ? legacy::kHeaderSizeMsix : legacy::kHeaderSize;
  if (offset >= header) {
    deviceConfigRead(static_cast<uint32_t>(offset - header), data);
    return;
  }
  std::lock_guard lock(mutex_);
  size_t size = data.size();
  bool queue_ok = queue_select_ < queue_cfg_.size();
  uint32_t value = 0;
  if (offset == legacy::kHostFeatures && size == 4) {
    value = static_cast<uint32_t>(device_->features());
  } else if (offset == legacy::kGuestFeatures && size == 4) {
    value = static_cast<uint32_t>(driver_features_);
  } else if (offset == legacy::kQueuePfn && size == 4) {
    value = queue_ok ? queue_cfg_[queue_select_].legacy_pfn : 0;
  } else if (offset == legacy::kQueueSize && size == 2) {
    value = queue_ok ? device_->queueMaxSize(queue_select_) : 0;
  } else if (offset == legacy::kQueueSelect && size == 2) {
    value = queue_select_;
  } else if (offset == legacy::kStatus && size == 1) {
    value = status_ | (needs_reset_ ? status::kNeedsReset : 0);
  } else if (offset == legacy::kIsr && size == 1) {
    value = isr_.exchange(0);  // reading the ISR clears it and lowers INTx
    updateIntx();
  } else if (msix && offset == legacy::kConfigVector && size == 2) {
    value = config_vector_;
  } else if (msix && offset == legacy::kQueueVector && size == 2) {
    value = queue_ok ? queue_vectors_[queue_select_].load() : kNoVector;
  }
  fromValue(value, data);
}

void VirtioPciTransport::legacyWrite(uint64_t offset, std::span<const uint8_t> data) {
  bool msix = msix_.enabled();
  uint64_t header = msix ? legacy::kHeaderSizeMsix : legacy::kHeaderSize;
  if (offset >= header) {
    deviceConfigWrite(static_cast<uint32_t>(offset - header), data);
    return;
  }
  std::lock_guard lock(mutex_);
  size_t size = data.size();
  uint32_t value = toValue(data);
  bool queue_ok = queue_select_ < queue_cfg_.size();
  bool driver_ok = status_ & status::kDriverOk;
  if (offset == legacy::kGuestFeatures && size == 4) {
    legacy_mode_ = true;
    if (driver_ok) {
      return;
    }
    uint64_t offered = device_->features() & 0xffffffffULL;
    if (value & ~offered) {
      if (guest_warnings_.allow()) {
        log::warn("{}: legacy driver acked features {:#x} that were not offered; dropped", name(),
                  value & ~offered);
      }
    }
    driver_features_ = value & offered;
  } else if (offset == legacy::kQueuePfn && size == 4) {
    legacy_mode_ = true;
    if (value == 0) {
      // A PFN of 0 resets the device (the legacy driver's way to tear a queue down).
      resetLocked();
      return;
    }
    if (!queue_ok || driver_ok) {
      return;  // out-of-range select, or geometry frozen after DRIVER_OK (case 13)
    }
    QueueConfig& c = queue_cfg_[queue_select_];
    c.size = device_->queueMaxSize(queue_select_);
    c.legacy_pfn = value;
    // 2.7.2 legacy layout: descriptors, then the available ring, then the used ring aligned
    // to 4096 bytes.
    c.desc = static_cast<uint64_t>(value) << legacy::kPfnShift;
    c.driver = c.desc + 16ULL * c.size;
    uint64_t avail_end = c.driver + 6 + 2ULL * c.size;
    c.device = (avail_end + legacy::kQueueAlign - 1) & ~(legacy::kQueueAlign - 1);
    c.enabled = true;
  } else if (offset == legacy::kQueueSelect && size == 2) {
    queue_select_ = static_cast<uint16_t>(value);
  } else if (offset == legacy::kQueueNotify && size == 2) {
    notifyFromRegister(value);
  } else if (offset == legacy::kStatus && size == 1) {
    legacy_mode_ = true;
    writeStatusLocked(static_cast<uint8_t>(value));
  } else if (msix && offset == legacy::kConfigVector && size == 2) {
    config_vector_ = checkedVector(static_cast<uint16_t>(value));
  } else if (msix && offset == legacy::kQueueVector && size == 2) {
    if (queue_ok) queue_vectors_[queue_select_] = checkedVector(static_cast<uint16_t>(value));
  }
}

void VirtioPciTransport::deviceConfigRead(uint32_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  device_->readConfig(offset, data);
}

void VirtioPciTransport::deviceConfigWrite(uint32_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  device_->writeConfig(offset, data);
}

}  // namespace ember::virtio
