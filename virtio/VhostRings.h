// The virtqueues of a device that a vhost backend serves (VhostBackend: the kernel's vhost or a
// vhost-user process): each live queue handed over at activation, taken back at reset. This is
// the seed's host and guest notifier handover: the backend gets the queue's kick eventfd, which
// KVM signals on the guest's notify write, and the eventfd that raises its interrupt (a KVM irqfd
// while the vector can be delivered, served by the event loop into the PBA while it is masked:
// VirtioInterrupt), both from the transport. With ioeventfd=off there is no kick eventfd to hand
// over: the kicks come to the device's notify(), which forwards them through an eventfd of ours.
//
// Every value the guest chose is checked before the backend sees it: the transport validated the
// queue (a power-of-two size within the maximum, rings aligned, enabled only with its addresses
// set: DriverState::liveQueues), and each ring must lie inside guest RAM, whose host address is
// what the backend gets (hostile-guest cases in docs/security.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "virtio/SplitQueue.h"
#include "virtio/VhostBackend.h"
#include "virtio/VirtioDevice.h"

namespace ember::virtio {

class VhostRings {
 public:
  explicit VhostRings(uint16_t queues) : rings_(queues) {}

  // Hands queue INDEX to BACKEND: its size, ring addresses, next available index, kick and call.
  Result<void> start(VhostBackend& backend, const GuestMemory& memory, VirtioDeviceHost& host,
                     uint16_t index, const SplitQueue& queue);
  // Stops every ring start() touched (GET_VRING_BASE, unless BACKEND is null: it is gone) and
  // takes the notifiers back. A backend that fails to stop a ring is a warning naming DEVICE.
  // Once a backend has stopped a ring, what its kick eventfd holds is the backend's: the kernel's
  // vhost is woken by each write and never reads the counter, so it is cleared here rather than
  // taken back as a kick the ring is waiting for (the ring is being torn down).
  void stopAll(VhostBackend* backend, VirtioDeviceHost& host, std::string_view device);
  // ioeventfd=off: carries a kick of queue INDEX to the backend; false when the queue's kicks
  // do not come this way.
  bool forwardKick(uint16_t index) const;
  bool started(uint16_t index) const { return index < rings_.size() && rings_[index].started; }

 private:
  struct Ring {
    bool started = false;  // the backend was given at least the ring's size
    bool kick_handed_over = false;
    int handed_kick = -1;  // the transport's kick eventfd while the backend has it
    bool interrupt_handed_over = false;
    std::optional<EventFd> own_kick;  // when ember forwards the kicks itself
  };
  std::vector<Ring> rings_;
};

}  // namespace ember::virtio
