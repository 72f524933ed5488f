// Unix stream sockets.
#include "kvm/UnixSocket.h"

#include <sys/socket.h>

#include <cstring>

namespace ember {

Result<sockaddr_un> unixSocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return makeError(Errc::InvalidArgument, "unix socket path '{}' must be 1 to {} bytes", path,
                     sizeof addr.sun_path - 1);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Result<UniqueFd> connectUnixSocket(const std::string& path) {
  sockaddr_un addr = EMBER_TRY(unixSocketAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return Error::fromErrno(Errc::Io, "socket");
  }
  // sockaddr_un is a sockaddr the kernel reads by its family (unix(7)).
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return Error::fromErrno(Errc::Io, fmt::format("cannot connect to {}", path));
  }
  return fd;
}

Result<UniqueFd> listenUnixSocket(const std::string& path, int backlog, bool nonblocking) {
  sockaddr_un addr = EMBER_TRY(unixSocketAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd.valid()) {
    return Error::fromErrno(Errc::Io, "socket");
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EADDRINUSE) {
      return makeError(Errc::Busy, "{}: the path exists; remove it or choose another", path);
    }
    return Error::fromErrno(Errc::Io, fmt::format("cannot bind {}", path));
  }
  if (::listen(fd.get(), backlog) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return Error::fromErrno(Errc::Io, fmt::format("cannot listen on {}", path), err);
  }
  return fd;
}

}  // namespace ember
