// The driver-set state and its status state machine.
#include "virtio/DriverState.h"

#include <fmt/format.h>

namespace ember::virtio {

DriverState DriverState::forQueues(std::span<const uint16_t> max_sizes) {
  DriverState s;
  for (uint16_t max : max_sizes) {
    s.queues.push_back(QueueState{max, max});
  }
  return s;
}

QueueState* DriverState::selectedQueue() {
  return queue_select < queues.size() ? &queues[queue_select] : nullptr;
}

const QueueState* DriverState::selectedQueue() const {
  return queue_select < queues.size() ? &queues[queue_select] : nullptr;
}

uint64_t DriverState::offeredFeatures(uint64_t device_features) const {
  return legacy ? (device_features & 0xffffffffULL) : (device_features | feature::kVersion1);
}

StatusChange DriverState::writeStatus(uint8_t value, uint64_t device_features) {
  StatusChange change;
  if (value == 0) {
    change.reset = true;
    return change;
  }
  uint8_t added = static_cast<uint8_t>(value & ~status);
  if ((value & status) != status) {
    change.refused.push_back(fmt::format(
        "driver tried to clear status bits {:#x} without a reset; ignored", status & ~value));
  }
  uint8_t next = static_cast<uint8_t>(status | value) & ~status::kNeedsReset;
  if (added & status::kFeaturesOk) {
    uint64_t offered = offeredFeatures(device_features);
    bool subset = (driver_features & ~offered) == 0;
    bool version_ok = legacy || (driver_features & feature::kVersion1);
    if (!subset || !version_ok) {
      change.refused.push_back(fmt::format(
          "FEATURES_OK refused: driver features {:#x} {} (offered {:#x})", driver_features,
          !subset ? "include bits not offered" : "lack VERSION_1", offered));
      next &= static_cast<uint8_t>(~status::kFeaturesOk);
    }
  }
  if ((added & status::kDriverOk) && !legacy && !(next & status::kFeaturesOk)) {
    change.refused.push_back("DRIVER_OK without FEATURES_OK on the modern interface; ignored");
    next &= static_cast<uint8_t>(~status::kDriverOk);
  }
  status = next;
  change.activate = (added & status::kDriverOk) && (status & status::kDriverOk);
  change.failed = added & status::kFailed;
  return change;
}

void DriverState::reset() {
  std::vector<QueueState> fresh;
  for (const auto& q : queues) {
    fresh.push_back(QueueState{q.max_size, q.max_size});
  }
  *this = DriverState{};
  queues = std::move(fresh);
}

Result<QueueSet> DriverState::liveQueues(const GuestMemory& memory) const {
  QueueSet live(queues.size());
  for (uint16_t i = 0; i < queues.size(); ++i) {
    const QueueState& q = queues[i];
    if (!q.enabled) continue;
    auto queue = SplitQueue::activate(memory, QueueGeometry{q.size, q.desc, q.driver, q.device},
                                      q.max_size, driver_features & feature::kEventIdx,
                                      driver_features & feature::kIndirectDesc);
    if (!queue) {
      return makeError(queue.error().code, "queue {}: {}", i, queue.error().message);
    }
    live[i].emplace(std::move(*queue));
  }
  return live;
}

void DriverState::placeLegacyRings(QueueState& q, uint32_t pfn) {
  q.size = q.max_size;
  q.legacy_pfn = pfn;
  q.desc = static_cast<uint64_t>(pfn) << legacy::kPfnShift;
  q.driver = q.desc + 16ULL * q.size;
  uint64_t avail_end = q.driver + 6 + 2ULL * q.size;
  q.device = (avail_end + legacy::kQueueAlign - 1) & ~(legacy::kQueueAlign - 1);
  q.enabled = true;
}

void DriverState::encode(StateWriter& w) const {
  w.u8(status);
  w.boolean(legacy);
  w.u32(device_feature_select);
  w.u32(driver_feature_select);
  w.u64(driver_features);
  w.u16(queue_select);
  w.u16(config_vector);
  w.u32(static_cast<uint32_t>(queues.size()));
  for (const auto& q : queues) {
    w.u16(q.max_size);
    w.u16(q.size);
    w.boolean(q.enabled);
    w.u64(q.desc);
    w.u64(q.driver);
    w.u64(q.device);
    w.u32(q.legacy_pfn);
    w.u16(q.vector);
  }
}

DriverState DriverState::decode(StateReader& r, std::span<const uint16_t> max_sizes) {
  DriverState s;
  s.status = r.u8("status");
  s.legacy = r.boolean("legacy");
  s.device_feature_select = r.u32("device_feature_select");
  s.driver_feature_select = r.u32("driver_feature_select");
  s.driver_features = r.u64("driver_features");
  s.queue_select = r.u16("queue_select");
  s.config_vector = r.u16("config_vector");
  uint32_t n = r.u32("queue count");
  if (r.ok() && n != max_sizes.size()) {
    r.fail("queue count", fmt::format("is {}; the device has {} queues", n, max_sizes.size()));
  }
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    QueueState q;
    q.max_size = r.u16("queue max_size");
    q.size = r.u16("queue size");
    q.enabled = r.boolean("queue enabled");
    q.desc = r.u64("queue desc");
    q.driver = r.u64("queue driver");
    q.device = r.u64("queue device");
    q.legacy_pfn = r.u32("queue legacy_pfn");
    q.vector = r.u16("queue vector");
    if (!r.ok()) break;
    std::string field = fmt::format("queue {}", i);
    if (q.max_size != max_sizes[i]) {
      r.fail(field,
             fmt::format("has the maximum size {}; the device's is {}", q.max_size, max_sizes[i]));
    } else if (q.size > q.max_size || (q.size & (q.size - 1)) != 0 || (q.enabled && q.size == 0)) {
      r.fail(field,
             fmt::format("has the size {}, not a power of two up to {}", q.size, q.max_size));
    } else if (s.legacy && q.enabled) {
      QueueState placed = q;
      placeLegacyRings(placed, q.legacy_pfn);
      if (placed.desc != q.desc || placed.driver != q.driver || placed.device != q.device) {
        r.fail(field, "has rings where its legacy PFN does not put them");
      }
    }
    s.queues.push_back(q);
  }
  return s;
}

}  // namespace ember::virtio
