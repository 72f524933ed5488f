// vhost-user requests and replies over a unix socket.
#include "virtio/VhostUserFrontend.h"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>

namespace ember::virtio {

using namespace vhost_user;

VhostUserFrontend::VhostUserFrontend(UniqueFd socket, std::string name, int timeout_ms)
    : socket_(std::move(socket)), name_(std::move(name)), timeout_ms_(timeout_ms) {}

Result<void> VhostUserFrontend::sendLocked(Request request, std::span<const uint8_t> payload,
                                           std::span<const int> fds, bool need_reply) {
  std::vector<uint8_t> bytes = encode(request, payload, need_reply);
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * kMaxRegions)] = {};
  if (!fds.empty()) {
    if (fds.size() > kMaxRegions) {
      return makeError(Errc::InvalidArgument, "{}: {} fds for {}", name_, fds.size(),
                       requestName(request));
    }
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());  // unix(7): int array
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("{}: sending {}", name_, requestName(request)));
  }
  if (static_cast<size_t>(n) != bytes.size()) {
    return makeError(Errc::Io, "{}: {} went out short ({} of {} bytes)", name_,
                     requestName(request), n, bytes.size());
  }
  return {};
}

Result<VhostUserFrontend::Reply> VhostUserFrontend::receiveLocked(Request request) {
  // A whole reply arrives in one stream read in practice, but a stream may split it: read the
  // header, then exactly its payload, each bounded by the timeout.
  auto readExact = [&](uint8_t* to, size_t len) -> Result<void> {
    size_t got = 0;
    while (got < len) {
      pollfd p{socket_.get(), POLLIN, 0};
      int ready = ::poll(&p, 1, timeout_ms_);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        return makeError(Errc::Io, "{} did not answer {} within {} ms", name_, requestName(request),
                         timeout_ms_);
      }
      ssize_t n = ::recv(socket_.get(), to + got, len - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return makeError(Errc::Io, "{} closed the connection (waiting for its answer to {})", name_,
                         requestName(request));
      }
      got += static_cast<size_t>(n);
    }
    return {};
  };
  uint8_t head[kHeaderSize];
  EMBER_TRY(readExact(head, sizeof head));
  Header header = *parseHeader(head);
  if (header.size > kMaxPayload) {
    return makeError(Errc::Io, "{}: its answer to {} claims {} bytes", name_, requestName(request),
                     header.size);
  }
  Reply reply{header, std::vector<uint8_t>(header.size)};
  EMBER_TRY(readExact(reply.payload.data(), reply.payload.size()));
  return reply;
}

Result<void> VhostUserFrontend::command(Request request, std::span<const uint8_t> payload,
                                        std::span<const int> fds) {
  std::lock_guard lock(mutex_);
  EMBER_TRY(sendLocked(request, payload, fds, reply_ack_));
  if (!reply_ack_) {
    return {};
  }
  Reply reply = EMBER_TRY(receiveLocked(request));
  std::string error;
  auto status = replyU64(reply.header, reply.payload, request, &error);
  if (!status) {
    return makeError(Errc::Io, "{}: {}", name_, error);
  }
  if (*status != 0) {
    return makeError(Errc::Unsupported, "{} refused {} (status {})", name_, requestName(request),
                     *status);
  }
  return {};
}

Result<uint64_t> VhostUserFrontend::queryU64(Request request) {
  std::lock_guard lock(mutex_);
  EMBER_TRY(sendLocked(request, {}, {}, false));
  Reply reply = EMBER_TRY(receiveLocked(request));
  std::string error;
  auto value = replyU64(reply.header, reply.payload, request, &error);
  if (!value) {
    return makeError(Errc::Io, "{}: {}", name_, error);
  }
  return *value;
}

Result<void> VhostUserFrontend::setOwner() {
  return command(Request::SetOwner, {});
}

Result<uint64_t> VhostUserFrontend::getFeatures() {
  return queryU64(Request::GetFeatures);
}

Result<void> VhostUserFrontend::setFeatures(uint64_t features) {
  return command(Request::SetFeatures, u64Payload(features));
}

Result<uint64_t> VhostUserFrontend::getProtocolFeatures() {
  return queryU64(Request::GetProtocolFeatures);
}

Result<void> VhostUserFrontend::setProtocolFeatures(uint64_t features) {
  EMBER_TRY(command(Request::SetProtocolFeatures, u64Payload(features)));
  std::lock_guard lock(mutex_);
  reply_ack_ = features & kProtocolReplyAck;
  return {};
}

Result<void> VhostUserFrontend::setMemTable(const GuestMemory& memory) {
  if (memory.fd() < 0) {
    return makeError(Errc::InvalidArgument,
                     "{}: guest memory is not shared (a memfd is needed for vhost-user)", name_);
  }
  if (memory.regions().size() > kMaxRegions) {
    return makeError(Errc::Unsupported, "{}: {} memory regions, vhost-user takes {}", name_,
                     memory.regions().size(), kMaxRegions);
  }
  std::vector<MemoryRegion> regions;
  std::vector<int> fds;
  for (const auto& r : memory.regions()) {
    // The host address of the region is what SET_VRING_ADDR's addresses are relative to.
    regions.push_back(MemoryRegion{r.start.raw, r.size,
                                   reinterpret_cast<uint64_t>(r.mapping.data()), r.fd_offset});
    fds.push_back(memory.fd());
  }
  return command(Request::SetMemTable, memTablePayload(regions), fds);
}

Result<void> VhostUserFrontend::setVringNum(uint32_t index, uint32_t num) {
  return command(Request::SetVringNum, vringStatePayload(index, num));
}

Result<void> VhostUserFrontend::setVringAddr(uint32_t index, uint64_t desc, uint64_t used,
                                             uint64_t avail) {
  return command(Request::SetVringAddr, vringAddrPayload(index, desc, used, avail));
}

Result<void> VhostUserFrontend::setVringBase(uint32_t index, uint32_t next_avail) {
  return command(Request::SetVringBase, vringStatePayload(index, next_avail));
}

Result<uint32_t> VhostUserFrontend::getVringBase(uint32_t index) {
  std::lock_guard lock(mutex_);
  // GET_VRING_BASE has a reply of its own, with or without REPLY_ACK.
  EMBER_TRY(sendLocked(Request::GetVringBase, vringStatePayload(index, 0), {}, false));
  Reply reply = EMBER_TRY(receiveLocked(Request::GetVringBase));
  std::string error;
  auto base = replyVringBase(reply.header, reply.payload, index, &error);
  if (!base) {
    return makeError(Errc::Io, "{}: {}", name_, error);
  }
  return *base;
}

Result<void> VhostUserFrontend::vringFd(Request request, uint32_t index, int fd) {
  uint64_t value = (index & 0xff) | (fd < 0 ? kVringNoFd : 0);
  if (fd < 0) {
    return command(request, u64Payload(value));
  }
  const int fds[] = {fd};
  return command(request, u64Payload(value), fds);
}

Result<void> VhostUserFrontend::setVringKick(uint32_t index, int fd) {
  return vringFd(Request::SetVringKick, index, fd);
}

Result<void> VhostUserFrontend::setVringCall(uint32_t index, int fd) {
  return vringFd(Request::SetVringCall, index, fd);
}

Result<void> VhostUserFrontend::setVringEnable(uint32_t index, bool enable) {
  return command(Request::SetVringEnable, vringStatePayload(index, enable ? 1 : 0));
}

}  // namespace ember::virtio
