// The kernel's vhost-net serving a virtio-net device's two queues (linux/vhost.h; what QEMU,
// crosvm and kvmtool use for fast networking). VirtioNet stays the device the guest sees (its
// configuration space, its features, the tap's vnet header and offloads); at activation it hands
// both rings here, and vhost-net moves frames between them and the tap in the kernel, woken by
// the queue's KVM ioeventfd and raising its interrupt through the MSI-X vector's irqfd, so that no
// userspace thread wakes per frame (VhostRings: the kick and the interrupt are the transport's,
// and a masked vector's interrupt lands in the PBA). Reset takes the rings back
// (VHOST_NET_SET_BACKEND to none, then VHOST_GET_VRING_BASE).
//
// Features: vhost-net must support each ring or header feature ember would offer (bits it does
// not report are not offered); the offloads and the configuration (MAC, MTU, status) are the
// tap's and ember's, as without vhost.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "virtio/VhostKernel.h"
#include "virtio/VhostRings.h"
#include "virtio/VirtioDevice.h"

namespace ember::devices {

class VhostNet {
 public:
  static constexpr const char* kDevice = "/dev/vhost-net";

  // Opens DEVICE, takes ownership of its worker (VHOST_SET_OWNER) and reads its features; WHAT
  // names the option in errors.
  static Result<VhostNet> open(const std::string& what, const std::string& device = kDevice);

  // Of OFFERED (the device's features without vhost), those vhost-net can serve.
  uint64_t offerable(uint64_t offered) const { return offerable(offered, vhost_features_); }
  // The same for a vhost-net that reports VHOST (VHOST_GET_FEATURES).
  static uint64_t offerable(uint64_t offered, uint64_t vhost);
  // Hands both queues of ACTIVATION to vhost-net, moving frames through TAP_FD.
  Result<void> start(virtio::Activation& activation, int tap_fd);
  // Takes the queues back (nothing to do when start() never ran).
  void stop(virtio::VirtioDeviceHost& host, const std::string& device);
  // ioeventfd=off: carries a guest's kick over to vhost-net.
  bool forwardKick(uint16_t queue) const { return rings_.forwardKick(queue); }
  uint64_t vhostFeatures() const { return vhost_features_; }

 private:
  VhostNet(virtio::VhostKernel vhost, uint64_t features)
      : vhost_(std::move(vhost)), vhost_features_(features), rings_(2) {}

  virtio::VhostKernel vhost_;
  uint64_t vhost_features_;
  virtio::VhostRings rings_;
  bool started_ = false;
};

}  // namespace ember::devices
