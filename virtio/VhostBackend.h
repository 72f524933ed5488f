// The requests that hand a virtqueue to a vhost backend and take it back, common to the kernel's
// vhost (ioctls on /dev/vhost-net or /dev/vhost-vsock: VhostKernel) and vhost-user (messages on a
// socket: VhostUserFrontend). vhost-user's ring messages carry the kernel ioctls' payloads
// (QEMU's docs/interop/vhost-user.rst, "VHOST_USER_SET_VRING_*"), so a device hands its rings over
// the same way to either (VhostRings).
#pragma once

#include <cstdint>
#include <string>

#include "kvm/Result.h"

namespace ember::virtio {

class VhostBackend {
 public:
  virtual ~VhostBackend() = default;
  // Names the backend in errors ("virtiofsd for /srv", "/dev/vhost-net").
  virtual const std::string& name() const = 0;
  virtual Result<void> setVringNum(uint32_t index, uint32_t num) = 0;
  // Ring addresses as this process's virtual addresses (the backend translates them through the
  // memory table's userspace addresses).
  virtual Result<void> setVringAddr(uint32_t index, uint64_t desc, uint64_t used,
                                    uint64_t avail) = 0;
  virtual Result<void> setVringBase(uint32_t index, uint32_t next_avail) = 0;
  // Stops the ring; returns its next available index.
  virtual Result<uint32_t> getVringBase(uint32_t index) = 0;
  // `fd` < 0: none (vhost-user's VHOST_USER_VRING_NOFD_MASK, the kernel's -1).
  virtual Result<void> setVringKick(uint32_t index, int fd) = 0;
  virtual Result<void> setVringCall(uint32_t index, int fd) = 0;
};

}  // namespace ember::virtio
