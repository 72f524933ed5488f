// Unix stream sockets by path (unix(7)): the address with its length checked, a connection, and
// a listening socket. Errors name the path.
#pragma once

#include <sys/un.h>

#include <string>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember {

// `path` as a sockaddr_un: 1 to 107 bytes.
Result<sockaddr_un> unixSocketAddress(const std::string& path);
// A connected, close-on-exec stream socket.
Result<UniqueFd> connectUnixSocket(const std::string& path);
// A bound, listening, close-on-exec stream socket (`nonblocking` for an event loop). An existing
// path is refused (Errc::Busy), never removed.
Result<UniqueFd> listenUnixSocket(const std::string& path, int backlog, bool nonblocking);

}  // namespace ember
