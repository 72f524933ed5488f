// The kernel's vhost (linux/vhost.h): a /dev/vhost-net or /dev/vhost-vsock file descriptor whose
// ioctls hand a device's virtqueues to a kernel worker thread. The ring requests are
// VhostBackend's (VhostRings hands the rings over); the rest are set-up: VHOST_SET_OWNER (the
// worker belongs to this process), the features (VHOST_GET/SET_FEATURES), the memory table
// (VHOST_SET_MEM_TABLE: each RAM region's guest-physical and host addresses), and the device
// kind's own: VHOST_NET_SET_BACKEND (a tap per queue) and VHOST_VSOCK_SET_GUEST_CID /
// VHOST_VSOCK_SET_RUNNING. Every failure names the ioctl and the device.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "virtio/VhostBackend.h"

namespace ember::virtio {

class VhostKernel : public VhostBackend {
 public:
  // Opens PATH (/dev/vhost-net, /dev/vhost-vsock) read-write; WHAT names the option that asked
  // for it in the error ("--net tap=tap0,vhost=on").
  static Result<VhostKernel> open(const std::string& path, const std::string& what);

  int fd() const { return fd_.get(); }
  const std::string& name() const override { return path_; }

  Result<void> setOwner();
  Result<uint64_t> getFeatures();
  Result<void> setFeatures(uint64_t features);
  // Every region of MEMORY, at its host address (what SET_VRING_ADDR's addresses are in).
  Result<void> setMemTable(const GuestMemory& memory);

  Result<void> setVringNum(uint32_t index, uint32_t num) override;
  Result<void> setVringAddr(uint32_t index, uint64_t desc, uint64_t used, uint64_t avail) override;
  Result<void> setVringBase(uint32_t index, uint32_t next_avail) override;
  Result<uint32_t> getVringBase(uint32_t index) override;
  Result<void> setVringKick(uint32_t index, int fd) override;
  Result<void> setVringCall(uint32_t index, int fd) override;

  // vhost-net: the tap queue INDEX moves frames through (-1: none, which stops the queue).
  Result<void> netSetBackend(uint32_t index, int tap_fd);
  // vhost-vsock: the guest's context ID (the kernel refuses one another VM holds: EADDRINUSE),
  // and starting or stopping the device.
  Result<void> vsockSetGuestCid(uint64_t cid);
  Result<void> vsockSetRunning(bool running);

 private:
  VhostKernel(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<void> call(unsigned long request, const char* request_name, void* arg);

  UniqueFd fd_;
  std::string path_;
};

}  // namespace ember::virtio
