// ApiServer on a real unix socket, driven by raw HTTP from the test: answers, keep-alive, the
// socket's mode, and the limits a hostile client runs into (oversized bodies and headers, slow
// and half-sent requests, clients that vanish mid-request, malformed requests).
// test-labels: threaded
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "kvm/UniqueFd.h"
#include "vmm/api/ApiServer.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm::api {
namespace {

using ember::vmm::testing::TempDir;

UniqueFd connectTo(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr),  // sockaddr_un as sockaddr
                      sizeof addr),
            0)
      << std::strerror(errno);
  return fd;
}

void sendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the server closed: the test reads what it answered
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// Everything the server sends until it closes the connection (or 5 s pass).
std::string readUntilClosed(int fd) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class ApiServerTest : public ::testing::Test {
 protected:
  void start(ApiServerLimits limits = {}) {
    auto s = ApiServer::start(path_, router_, limits);
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(*s);
  }
  std::string roundTrip(std::string_view request) {
    UniqueFd fd = connectTo(path_);
    sendAll(fd.get(), request);
    return readUntilClosed(fd.get());
  }
  TempDir dir_;
  std::string path_ = dir_.at("api.sock");
  ApiRouter router_{"test", VmResources{}};
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, AnswersFirecrackersWay) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::string r = roundTrip("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: application/json"), std::string::npos) << r;
  EXPECT_NE(r.find(R"("state":"Not started")"), std::string::npos) << r;

  // curl -d labels JSON as a form; Firecracker's examples send it so, and it is accepted.
  std::string body = R"({"vcpu_count": 2, "mem_size_mib": 256})";
  r =
      roundTrip(fmt::format("PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n"
                            "Content-Type: application/x-www-form-urlencoded\r\n"
                            "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                            body.size(), body));
  EXPECT_EQ(r.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << r;
  EXPECT_EQ(router_.handle({"GET", "/machine-config", ""}).body.find(R"("vcpu_count":2)") !=
                std::string::npos,
            true);
}

TEST_F(ApiServerTest, KeepAliveServesRequestsInTurn) {
  start();
  UniqueFd fd = connectTo(path_);
  // Two requests in one write (pipelined), the second closing.
  sendAll(fd.get(),
          "GET /machine-config HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string r = readUntilClosed(fd.get());
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("HTTP/1.1 400 Bad Request\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("no endpoint GET /nowhere"), std::string::npos) << r;
}

TEST_F(ApiServerTest, OversizedBodiesAndHeadersAreRefused) {
  start();
  std::string big(65 * 1024 + 1, ' ');
  std::string r = roundTrip(fmt::format(
      "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}", big.size(), big));
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r.substr(0, 200);
  EXPECT_NE(r.find("over 64 KiB"), std::string::npos) << r.substr(0, 300);

  r = roundTrip("GET / HTTP/1.1\r\nX-Junk: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_NE(r.find("header is over 8 KiB"), std::string::npos) << r.substr(0, 300);
  EXPECT_EQ(router_.state(), InstanceState::NotStarted);
}

TEST_F(ApiServerTest, HalfSentAndMalformedRequestsAreAnswered400) {
  ApiServerLimits limits;
  limits.request_ms = 300;
  start(limits);
  UniqueFd fd = connectTo(path_);
  sendAll(fd.get(), "PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"vcpu");
  std::string r = readUntilClosed(fd.get());
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  EXPECT_NE(r.find("did not arrive whole"), std::string::npos) << r;

  r = roundTrip("THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  EXPECT_NE(r.find("malformed HTTP request"), std::string::npos) << r;
  EXPECT_NE(router_.handle({"GET", "/machine-config", ""}).body.find(R"("vcpu_count":1)"),
            std::string::npos);  // the half-sent body changed nothing
}

TEST_F(ApiServerTest, AClientThatVanishesDisturbsNothing) {
  start();
  for (int i = 0; i < 20; ++i) {
    UniqueFd fd = connectTo(path_);
    sendAll(fd.get(), "PUT /machine-config HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"vcpu_c");
  }  // each closed mid-request
  std::string r = roundTrip("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(router_.handle({"GET", "/machine-config", ""}).body.find(R"("vcpu_count":1)"),
            std::string::npos);
}

TEST_F(ApiServerTest, AnExistingPathIsRefusedAndTheSocketIsRemovedAtTheEnd) {
  start();
  auto second = ApiServer::start(path_, router_);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("the path exists"), std::string::npos);
  server_.reset();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  auto too_long = ApiServer::start(dir_.at(std::string(200, 'x')), router_);
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("1 to 107 bytes"), std::string::npos);
}

}  // namespace
}  // namespace ember::vmm::api
