// The frontend side of a vhost-user connection (QEMU's docs/interop/vhost-user.rst): the requests
// that hand a device's virtqueues to a backend in another process (virtiofsd) and take them
// back. Each request is sent with its file descriptors (SCM_RIGHTS); requests that have a reply,
// and, once REPLY_ACK is negotiated, every request (need_reply), wait for the backend's answer,
// bounded by a timeout, so that a backend that hangs or dies is an error naming the request,
// never a hang of the vCPU that activated the device. One exchange at a time (a mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "virtio/VhostBackend.h"
#include "virtio/VhostUserMessage.h"

namespace ember::virtio {

class VhostUserFrontend : public VhostBackend {
 public:
  // `socket` is connected to the backend; `name` names it in errors ("virtiofsd for /srv").
  VhostUserFrontend(UniqueFd socket, std::string name, int timeout_ms = 5000);

  int fd() const { return socket_.get(); }
  const std::string& name() const override { return name_; }

  Result<void> setOwner();
  Result<uint64_t> getFeatures();
  Result<void> setFeatures(uint64_t features);
  Result<uint64_t> getProtocolFeatures();
  // Negotiates the protocol features; with REPLY_ACK every later request waits for its ack.
  Result<void> setProtocolFeatures(uint64_t features);
  // Every region of `memory`, which must be SharedMemfd-backed, with the memfd for each.
  Result<void> setMemTable(const GuestMemory& memory);
  Result<void> setVringNum(uint32_t index, uint32_t num) override;
  Result<void> setVringAddr(uint32_t index, uint64_t desc, uint64_t used, uint64_t avail) override;
  Result<void> setVringBase(uint32_t index, uint32_t next_avail) override;
  Result<uint32_t> getVringBase(uint32_t index) override;
  Result<void> setVringKick(uint32_t index, int fd) override;
  Result<void> setVringCall(uint32_t index, int fd) override;
  Result<void> setVringEnable(uint32_t index, bool enable);

 private:
  using Request = vhost_user::Request;
  struct Reply {
    vhost_user::Header header;
    std::vector<uint8_t> payload;
  };
  Result<void> sendLocked(Request request, std::span<const uint8_t> payload,
                          std::span<const int> fds, bool need_reply);
  Result<Reply> receiveLocked(Request request);
  // A request without a reply of its own: acknowledged when REPLY_ACK is on.
  Result<void> command(Request request, std::span<const uint8_t> payload,
                       std::span<const int> fds = {});
  Result<uint64_t> queryU64(Request request);
  Result<void> vringFd(Request request, uint32_t index, int fd);

  UniqueFd socket_;
  std::string name_;
  int timeout_ms_;
  bool reply_ack_ = false;
  std::mutex mutex_;
};

}  // namespace ember::virtio
