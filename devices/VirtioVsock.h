// virtio-vsock (virtio 1.2, 5.10) served by the kernel's vhost-vsock (/dev/vhost-vsock, module
// vhost_vsock): stream (and seqpacket) sockets between the guest (AF_VSOCK, with the context ID
// this device's configuration gives it) and this host (AF_VSOCK to that CID), what Firecracker,
// Cloud Hypervisor and Kata use to talk to agents in the guest. Ember owns the PCI device, the
// configuration (5.10.4: le64 guest_cid) and the feature negotiation; the kernel moves the
// packets.
//
// Queues (5.10.2): 0 rx and 1 tx, handed to vhost-vsock at activation with the transport's kick
// ioeventfd and interrupt irqfd (VhostRings), and VHOST_VSOCK_SET_RUNNING; 2 the event queue,
// which stays ember's: the device sends an event only on a transport reset after a migration,
// which ember never does, so the driver's buffers wait there. Reset stops the device and takes
// the rings back.
//
// The CID is claimed at creation (VHOST_VSOCK_SET_GUEST_CID): below 3 is refused (0-2 are the
// hypervisor's, the local and the host's, 5.10.4), and one another VM holds is refused with one
// line (EADDRINUSE).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "virtio/VhostKernel.h"
#include "virtio/VhostRings.h"
#include "virtio/VirtioDevice.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

class VirtioVsock : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
  static constexpr uint16_t kQueueSize = 256;
  static constexpr const char* kDevice = "/dev/vhost-vsock";
  static constexpr uint64_t kFirstGuestCid = 3;

  // A guest's CID: 3 to 2^32 - 2 (5.10.4; 0-2 are the hypervisor's, the local and the host's,
  // 2^32 - 1 is VMADDR_CID_ANY). --vsock's parser and create() both ask it.
  static Result<void> checkCid(uint64_t cid);
  static Result<std::unique_ptr<VirtioVsock>> create(uint64_t cid,
                                                     const std::string& device = kDevice);
  ~VirtioVsock() override;

  std::string name() const override { return "virtio-vsock cid " + std::to_string(cid_); }
  uint16_t deviceType() const override { return virtio::device_type::kVsock; }
  uint64_t features() const override;
  uint16_t queueCount() const override { return 3; }
  uint16_t queueMaxSize(uint16_t) const override { return kQueueSize; }
  uint32_t configSize() const override { return 8; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  virtio::DeviceCounters counters() const override;

 private:
  VirtioVsock(virtio::VhostKernel vhost, uint64_t cid, uint64_t vhost_features)
      : vhost_(std::move(vhost)), cid_(cid), vhost_features_(vhost_features), rings_(2) {}
  void stopLocked();

  virtio::VhostKernel vhost_;
  uint64_t cid_;
  uint64_t vhost_features_;
  virtio::VhostRings rings_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  bool running_ = false;
  virtio::DeviceCounters counters_;
};

}  // namespace ember::devices
