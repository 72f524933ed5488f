// `ember run --api-sock PATH`: HTTP/1.1 on a unix socket (mode 0600), served by Boost.Beast over
// asio's local stream sockets on a thread of its own, every request handed to ApiRouter.
//
// The socket's client is trusted less than the operator, so every connection is bounded: a
// request's header may be 8 KiB and its body 64 KiB (a larger one is answered 400 and the
// connection closed); a request must arrive whole within 5 s of its first byte (a slow or
// half-sent one is answered 400 and closed); an idle connection is closed after 60 s; at most 16
// connections are open at once. A client that goes away mid-request leaves nothing behind.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "kvm/Result.h"
#include "vmm/api/ApiRouter.h"

namespace ember::vmm::api {

struct ApiServerLimits {
  size_t header_bytes = 8 << 10;
  size_t body_bytes = 64 << 10;
  int request_ms = 5000;  // from a request's first byte to its last
  int idle_ms = 60000;    // between requests on one connection
  size_t connections = 16;
};

// One whole request in BYTES, parsed as the server parses a connection's (the same parser and
// limits); the error says what a client would be answered. For the fuzz target and the tests.
Result<ApiRequest> parseHttpRequest(std::string_view bytes, const ApiServerLimits& limits = {});

class ApiServer {
 public:
  // Binds PATH (refused if something exists there: a socket left by a dead ember is for the
  // operator to remove, as Firecracker's is) and starts serving. ROUTER outlives the server.
  static Result<std::unique_ptr<ApiServer>> start(const std::string& path, ApiRouter& router,
                                                  ApiServerLimits limits = {});
  // Stops the thread, closes every connection and removes the socket file.
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  const std::string& path() const { return path_; }

  struct Impl;  // the io_context, acceptor and connections (ApiServer.cpp)

 private:
  explicit ApiServer(std::string path);
  std::string path_;
  std::unique_ptr<Impl> impl_;
  std::jthread thread_;
};

}  // namespace ember::vmm::api
