// The kernel's vhost ioctls (see VhostKernel.h).
#include "virtio/VhostKernel.h"

#include <fcntl.h>
// linux/vhost.h includes linux/virtio_ring.h, whose legacy vring_init() is C that C++ refuses.
#define VIRTIO_RING_NO_LEGACY
#include <linux/vhost.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <vector>

namespace ember::virtio {

Result<VhostKernel> VhostKernel::open(const std::string& path, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    const char* hint = err == ENOENT ? " (load the vhost module: modprobe vhost_net or vhost_vsock)"
                       : err == EACCES ? " (it needs read-write access)"
                                       : "";
    return Error::fromErrno(Errc::NotFound, fmt::format("{}: cannot open {}{}", what, path, hint),
                            err);
  }
  return VhostKernel(UniqueFd(fd), path);
}

Result<void> VhostKernel::call(unsigned long request, const char* request_name, void* arg) {
  if (::ioctl(fd_.get(), request, arg) < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("{}: {}", path_, request_name));
  }
  return {};
}

Result<void> VhostKernel::setOwner() {
  return call(VHOST_SET_OWNER, "VHOST_SET_OWNER", nullptr);
}

Result<uint64_t> VhostKernel::getFeatures() {
  uint64_t features = 0;
  EMBER_TRY(call(VHOST_GET_FEATURES, "VHOST_GET_FEATURES", &features));
  return features;
}

Result<void> VhostKernel::setFeatures(uint64_t features) {
  return call(VHOST_SET_FEATURES, "VHOST_SET_FEATURES", &features);
}

Result<void> VhostKernel::setMemTable(const GuestMemory& memory) {
  // struct vhost_memory: nregions, padding, then the regions; built in 8-byte words so that the
  // regions' 64-bit fields are aligned.
  const auto& regions = memory.regions();
  std::vector<uint64_t> words(
      (sizeof(vhost_memory) + regions.size() * sizeof(vhost_memory_region) + 7) / 8);
  auto* table = reinterpret_cast<vhost_memory*>(words.data());
  table->nregions = static_cast<uint32_t>(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) {
    table->regions[i].guest_phys_addr = regions[i].start.raw;
    table->regions[i].memory_size = regions[i].size;
    table->regions[i].userspace_addr = reinterpret_cast<uint64_t>(regions[i].mapping.data());
  }
  return call(VHOST_SET_MEM_TABLE, "VHOST_SET_MEM_TABLE", table);
}

Result<void> VhostKernel::setVringNum(uint32_t index, uint32_t num) {
  vhost_vring_state s{index, num};
  return call(VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM", &s);
}

Result<void> VhostKernel::setVringAddr(uint32_t index, uint64_t desc, uint64_t used,
                                       uint64_t avail) {
  vhost_vring_addr a{};
  a.index = index;
  a.desc_user_addr = desc;
  a.used_user_addr = used;
  a.avail_user_addr = avail;
  return call(VHOST_SET_VRING_ADDR, "VHOST_SET_VRING_ADDR", &a);
}

Result<void> VhostKernel::setVringBase(uint32_t index, uint32_t next_avail) {
  vhost_vring_state s{index, next_avail};
  return call(VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE", &s);
}

Result<uint32_t> VhostKernel::getVringBase(uint32_t index) {
  vhost_vring_state s{index, 0};
  EMBER_TRY(call(VHOST_GET_VRING_BASE, "VHOST_GET_VRING_BASE", &s));
  return s.num;
}

Result<void> VhostKernel::setVringKick(uint32_t index, int fd) {
  vhost_vring_file f{index, fd};
  return call(VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", &f);
}

Result<void> VhostKernel::setVringCall(uint32_t index, int fd) {
  vhost_vring_file f{index, fd};
  return call(VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", &f);
}

Result<void> VhostKernel::netSetBackend(uint32_t index, int tap_fd) {
  vhost_vring_file f{index, tap_fd};
  return call(VHOST_NET_SET_BACKEND, "VHOST_NET_SET_BACKEND", &f);
}

Result<void> VhostKernel::vsockSetGuestCid(uint64_t cid) {
  return call(VHOST_VSOCK_SET_GUEST_CID, "VHOST_VSOCK_SET_GUEST_CID", &cid);
}

Result<void> VhostKernel::vsockSetRunning(bool running) {
  int on = running ? 1 : 0;
  return call(VHOST_VSOCK_SET_RUNNING, "VHOST_VSOCK_SET_RUNNING", &on);
}

}  // namespace ember::virtio
