// The interface between the virtio-pci transport and a device model (block, console, ...).
//
// Two-phase lifecycle (virtio 1.2, 3.1): until DRIVER_OK the transport owns feature negotiation
// and queue configuration; at DRIVER_OK it validates the queues and moves them, with the guest
// memory and the negotiated features, into activate(): the device owns its queues while it is
// live. Kicks arrive through notify() on the event loop thread (ioeventfd) or on a vCPU thread
// (userspace kicks). reset() must stop all work and hand the queues back, with their ring
// indices as the device left them: when it returns, in-flight I/O has completed or been
// cancelled and the device will not touch guest memory again.
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

namespace ember::virtio {

// What a device may ask of its transport, from any thread.
class VirtioDeviceHost {
 public:
  virtual ~VirtioDeviceHost() = default;
  // Used buffers were added to `queue`; interrupts the driver if it asked for it.
  virtual void queueUsed(uint16_t queue, SplitQueue& q) = 0;
  virtual void configChanged() = 0;
  // The device cannot go on: sets DEVICE_NEEDS_RESET and raises a config interrupt
  // (hostile-guest preamble). `reason` names the rule the driver broke.
  virtual void needsReset(const std::string& reason) = 0;
  // Whether the device may take new buffers from its queues now (false while the driver has
  // bus mastering turned off after turning it on, hostile-guest case 26). Devices check it
  // before work that is not a kick: completions, host input, tap traffic.
  virtual bool mayProcess() const = 0;

  // For a device whose queues a backend in another process or in the kernel serves (vhost-user,
  // vhost): the queue's kick eventfd, which KVM signals on the guest's notify write (the seed's
  // host notifier), and the eventfd that raises the queue's interrupt (its guest notifier).
  // Called only from inside activate() (hand over) and reset() (take back), where the transport
  // holds its lock. A host without them (ioeventfd=off, or a test) answers with an error; a
  // device then falls back to serving the kicks itself (notify()) through an eventfd of its own.
  virtual Result<int> handOverKick(uint16_t queue) {
    return makeError(Errc::Unsupported, "queue {}: no kick eventfd to hand over", queue);
  }
  virtual void takeBackKick(uint16_t /*queue*/) {}
  virtual Result<int> handOverInterrupt(uint16_t queue) {
    return makeError(Errc::Unsupported, "queue {}: no interrupt to hand over", queue);
  }
  virtual void takeBackInterrupt(uint16_t /*queue*/) {}
};

struct Activation {
  const GuestMemory* memory;
  uint64_t features;  // negotiated
  QueueSet queues;
  VirtioDeviceHost* host;

  // Queue `index`, or null when the driver left it off (or the device has no such queue).
  SplitQueue* queue(uint16_t index) {
    return index < queues.size() && queues[index] ? &*queues[index] : nullptr;
  }
};

// What a device has done, for the run record (ember run --report). Each device says in its
// counters() what its requests, bytes, errors and drops are.
struct DeviceCounters {
  uint64_t requests = 0;  // chains completed (returned to the used ring)
  uint64_t bytes = 0;     // payload moved between guest memory and the backend
  uint64_t errors = 0;    // requests that failed or that the device refused
  uint64_t dropped = 0;   // frames or buffers given up without being carried out
};

// Each queue's position in its rings (issue 13), one entry per queue: none where the queue is
// not live.
using QueuePositions = std::vector<std::optional<QueuePosition>>;
inline QueuePositions queuePositions(const std::optional<Activation>& act) {
  QueuePositions out;
  if (act) {
    for (const auto& q : act->queues) {
      out.push_back(q ? std::optional(q->position()) : std::nullopt);
    }
  }
  return out;
}

// For a device's reset(): the queues of its activation, if it has one, and the activation gone.
inline QueueSet releaseQueues(std::optional<Activation>& act) {
  QueueSet queues = act ? std::move(act->queues) : QueueSet{};
  act.reset();
  return queues;
}

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual std::string name() const = 0;
  virtual uint16_t deviceType() const = 0;
  // Device-specific feature bits plus the ring features it supports (not VERSION_1, which the
  // transport adds on its modern face).
  virtual uint64_t features() const = 0;
  virtual uint16_t queueCount() const = 0;
  virtual uint16_t queueMaxSize(uint16_t /*queue*/) const { return 256; }
  std::vector<uint16_t> queueMaxSizes() const {
    std::vector<uint16_t> sizes;
    for (uint16_t q = 0; q < queueCount(); ++q) sizes.push_back(queueMaxSize(q));
    return sizes;
  }
  virtual uint32_t configSize() const = 0;
  virtual void readConfig(uint32_t offset, std::span<uint8_t> data) = 0;
  virtual void writeConfig(uint32_t /*offset*/, std::span<const uint8_t> /*data*/) {}

  virtual Result<void> activate(Activation activation) = 0;
  virtual void notify(uint16_t queue) = 0;
  // Stops all work and hands the queues back (an empty set when the device was not live).
  virtual QueueSet reset() = 0;

  // Safe from any thread.
  virtual DeviceCounters counters() const = 0;

  // A snapshot (issue 13), called only while the VM is paused (no vCPU runs and the event loop
  // serves nothing), with the transport's lock held. The device first completes what it has in
  // flight, so that every chain it took from a queue is in the used ring and the queues'
  // positions say everything; then it writes its own state (what it holds beyond its queues
  // and what the transport saves) and returns its live queues' positions (queuePositions()).
  // The default refuses: a device that has not said what its state is cannot be saved.
  virtual Result<QueuePositions> saveState(StateWriter& w);
  // At restore, after activate() gave the device its queues at their saved positions (or with
  // no activation when the driver had not set DRIVER_OK): the bytes saveState wrote. They are
  // untrusted (a snapshot file can be tampered with): bounded decoding, errors the reader's.
  virtual void loadState(StateReader& r);
};

// Reads device config bytes from a struct image, bounded (device config accesses of any size at
// any offset: bytes past the end read as zero).
void readConfigBytes(std::span<const uint8_t> image, uint32_t offset, std::span<uint8_t> out);

}  // namespace ember::virtio
