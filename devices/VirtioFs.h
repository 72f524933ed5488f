// virtio-fs (virtio 1.2, 5.11) whose queues a vhost-user backend serves (virtiofsd: QEMU's
// docs/interop/vhost-user.rst and FUSE over virtqueues). Ember owns the PCI device, the
// configuration (5.11.4: the tag and num_request_queues) and the feature negotiation; the backend
// reads the guest's FUSE requests straight from guest memory (a shared memfd, SET_MEM_TABLE) and
// answers them into it.
//
// Queues: 0 the high-priority queue, 1 the one request queue. At activation each live queue is
// given to the backend: its size, ring addresses (as ember's own virtual addresses, which the
// memory table maps), the next available index, the kick eventfd KVM signals on the guest's notify
// write and the eventfd that raises its interrupt, both handed over by the transport (the seed's
// host and guest notifiers); with ioeventfd=off the kicks come to notify() and ember forwards
// them through an eventfd of its own. Reset stops each ring (GET_VRING_BASE) and takes the
// notifiers back.
//
// A backend that goes away (the socket hangs up) is one log line and DEVICE_NEEDS_RESET; the
// device is dead from then on and refuses activation; the VM goes on.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvm/EventLoop.h"
#include "kvm/UniqueFd.h"
#include "virtio/VhostRings.h"
#include "virtio/VhostUserFrontend.h"
#include "virtio/VirtioDevice.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

class VirtioFs : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kDeviceType = virtio::device_type::kFileSystem;
  static constexpr uint16_t kQueueSize = 128;
  static constexpr uint16_t kQueues = 2;  // hiprio + one request queue
  static constexpr size_t kTagSize = 36;

  // Connects to the backend on `socket` (SET_OWNER, its features and protocol features, the
  // memory table; `memory` must be SharedMemfd-backed and outlive the device). `loop`, if given,
  // watches the socket for the backend going away.
  static Result<std::unique_ptr<VirtioFs>> create(UniqueFd socket, std::string tag,
                                                  std::string backend_name,
                                                  const GuestMemory& memory, EventLoop* loop);
  ~VirtioFs() override;

  std::string name() const override { return "virtio-fs " + tag_; }
  uint16_t deviceType() const override { return kDeviceType; }
  uint64_t features() const override;
  uint16_t queueCount() const override { return kQueues; }
  uint16_t queueMaxSize(uint16_t) const override { return kQueueSize; }
  uint32_t configSize() const override { return kTagSize + 4; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  // The backend serves the requests: ember sees none of them. requests counts kicks ember
  // forwarded itself (ioeventfd=off); errors counts backend failures (a refused request, the
  // backend going away).
  virtio::DeviceCounters counters() const override;

  bool backendGone() const { return gone_.load(); }

 private:
  VirtioFs(std::string tag, std::unique_ptr<virtio::VhostUserFrontend> frontend,
           const GuestMemory& memory, uint64_t backend_features, bool protocol_features);
  void stopRingsLocked();
  void onBackendGone();

  std::string tag_;
  std::unique_ptr<virtio::VhostUserFrontend> frontend_;
  const GuestMemory& memory_;
  uint64_t backend_features_;
  bool protocol_features_;
  EventLoop::Registration hangup_reg_;
  std::atomic<bool> gone_{false};

  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  virtio::VhostRings rings_;
  virtio::DeviceCounters counters_;
};

}  // namespace ember::devices
