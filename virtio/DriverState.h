// What a virtio driver has set through the transport (virtio 1.2, 4.1.4.3 common configuration
// and 4.1.5.1 legacy registers): the device status, the feature words and their selectors, the
// queue selector, and each queue's size, ring addresses, enable bit and MSI-X vector. A plain
// value type: the legacy and modern faces decode register accesses into and out of it, the
// transport acts on what changed, and a snapshot saves it as it is.
//
// The rules that depend on nothing but this state live here too: which features are offered on
// which face, and the status state machine (2.1, 3.1.1): bits are never cleared without a reset,
// FEATURES_OK sticks only for a subset of the offered features (with VERSION_1 on the modern
// face), and DRIVER_OK needs FEATURES_OK on the modern face (hostile-guest case 20).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"
#include "virtio/SplitQueue.h"
#include "virtio/VirtioSpec.h"

namespace ember::virtio {

struct QueueState {
  uint16_t max_size = 0;  // the device's maximum: not the driver's, but what a reset restores
  uint16_t size = 0;
  bool enabled = false;
  uint64_t desc = 0, driver = 0, device = 0;  // descriptor table, driver area, device area
  uint32_t legacy_pfn = 0;                    // the legacy face's page frame number, as written
  uint16_t vector = kNoVector;                // checked against the MSI-X table when written

  bool operator==(const QueueState&) const = default;
};

// What a status write asks of the transport beyond the new status value.
struct StatusChange {
  bool reset = false;                // the driver wrote 0: reset the device (2.4)
  bool activate = false;             // DRIVER_OK became set: the device goes live
  bool failed = false;               // FAILED became set: the driver gave up on the device
  std::vector<std::string> refused;  // rules the write broke, one line each (for the log)
};

struct DriverState {
  uint8_t status = 0;
  bool legacy = false;  // the driver touched a legacy-only register: the legacy face until reset
  uint32_t device_feature_select = 0;
  uint32_t driver_feature_select = 0;
  uint64_t driver_features = 0;
  uint16_t queue_select = 0;
  uint16_t config_vector = kNoVector;
  std::vector<QueueState> queues;

  // The power-on state of a device whose queues have these maximum sizes.
  static DriverState forQueues(std::span<const uint16_t> max_sizes);

  bool operator==(const DriverState&) const = default;

  bool driverOk() const { return status & status::kDriverOk; }
  // The queue queue_select names, or null when it is out of range (4.1.4.3.2, case 16).
  QueueState* selectedQueue();
  const QueueState* selectedQueue() const;

  // The features the device offers on the face in use: the low 32 bits on the legacy face, with
  // VERSION_1 added on the modern one.
  uint64_t offeredFeatures(uint64_t device_features) const;
  // A write of the device status field. Applies the new status and says what else must happen.
  StatusChange writeStatus(uint8_t value, uint64_t device_features);
  // Back to the power-on state (queue sizes to their maximum, vectors to NO_VECTOR).
  void reset();
  // The queues the driver enabled, validated and frozen for the device to own (2.7, hostile-guest
  // cases 12-13), with the negotiated ring features; an error names the first bad queue.
  Result<QueueSet> liveQueues(const GuestMemory& memory) const;
  // 2.7.2 legacy layout for a queue whose rings start at `pfn`: the descriptor table, then the
  // available ring, then the used ring aligned to 4096 bytes.
  static void placeLegacyRings(QueueState& q, uint32_t pfn);

  // A snapshot's copy (issue 13): every field as it is.
  void encode(StateWriter& w) const;
  // Reads what encode() wrote, from untrusted bytes, for a device whose queues have MAX_SIZES:
  // the queue count and each maximum must be the device's, a queue's size at most its maximum
  // and a power of two (2.7: 0 only while it is disabled), a legacy queue's rings where its PFN
  // puts them. The MSI-X vectors are the transport's to check against its table. Errors are
  // the reader's (r.finish()).
  static DriverState decode(StateReader& r, std::span<const uint16_t> max_sizes);
};

}  // namespace ember::virtio
