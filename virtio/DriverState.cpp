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

}  // namespace ember::virtio
