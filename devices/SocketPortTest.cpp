// SocketPort on a real unix socket in a temporary directory, its event loop driven by hand: the
// host side opens and closes with the client, bytes go both ways, input pauses while the guest
// has no room and resumes on room(), guest output waits (bounded) for a slow client, a second
// client is refused, an existing path is refused and left alone, and the socket file is removed.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "devices/SocketPort.h"

namespace ember::devices {
namespace {

// A guest side with room for `room` bytes at a time.
struct FakeHost : PortHost {
  size_t pushInput(std::span<const uint8_t> b) override {
    size_t n = std::min(b.size(), room);
    received.append(b.begin(), b.begin() + static_cast<long>(n));
    room -= n;
    return n;
  }
  void setHostOpen(bool open) override { opens.push_back(open); }
  void outputRoom() override {}
  size_t room = 1 << 20;
  std::string received;
  std::vector<bool> opens;
};

struct Rig {
  Rig() : loop(std::move(EventLoop::create()).value()) {
    char tmpl[] = "/tmp/ember-socketport-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/port.sock";
  }
  ~Rig() {
    port.reset();
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  void make() {
    auto p = SocketPort::create(path, *loop);
    ASSERT_TRUE(p) << p.error().message;
    port = std::move(*p);
    port->attach(host);
  }
  UniqueFd connect() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }
  void spin(int rounds = 5) {
    for (int i = 0; i < rounds; ++i) loop->runOnce(20);
  }
  std::unique_ptr<EventLoop> loop;
  std::string dir, path;
  FakeHost host;
  std::unique_ptr<SocketPort> port;
};

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string readSome(int fd, size_t want) {
  std::string out;
  char buf[4096];
  while (out.size() < want) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, want - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(SocketPort, TheHostSideIsOpenWhileAClientIsConnected) {
  Rig r;
  r.make();
  EXPECT_FALSE(r.port->hostOpen());
  struct stat st {};
  ASSERT_EQ(::stat(r.path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  {
    UniqueFd client = r.connect();
    r.spin();
    EXPECT_TRUE(r.port->hostOpen());
    EXPECT_EQ(r.host.opens, std::vector<bool>{true});
  }
  r.spin();
  EXPECT_FALSE(r.port->hostOpen());
  EXPECT_EQ(r.host.opens, (std::vector<bool>{true, false}));
}

TEST(SocketPort, BytesBothWays) {
  Rig r;
  r.make();
  r.port->write(bytes("lost"));  // no client yet: dropped and counted
  EXPECT_EQ(r.port->droppedBytes(), 4u);
  UniqueFd client = r.connect();
  r.spin();
  r.port->write(bytes("to the client"));
  EXPECT_EQ(readSome(client.get(), 13), "to the client");
  ASSERT_EQ(::write(client.get(), "to the guest", 12), 12);
  r.spin();
  EXPECT_EQ(r.host.received, "to the guest");
}

TEST(SocketPort, InputPausesWithoutRoomAndResumesOnRoom) {
  Rig r;
  r.make();
  UniqueFd client = r.connect();
  r.spin();
  r.host.room = 3;
  ASSERT_EQ(::write(client.get(), "abcdefgh", 8), 8);
  r.spin();
  EXPECT_EQ(r.host.received, "abc");
  r.spin();
  EXPECT_EQ(r.host.received, "abc") << "paused: nothing more is read";
  r.host.room = 100;
  r.port->room();
  EXPECT_EQ(r.host.received, "abcdefgh") << "the held bytes go as soon as there is room";
  ASSERT_EQ(::write(client.get(), "ij", 2), 2);
  r.spin();
  EXPECT_EQ(r.host.received, "abcdefghij") << "and reading resumed";
}

TEST(Hostile, Case36_SocketPortGuestFloodAgainstAClientThatDoesNotRead) {
  Rig r;
  r.make();
  UniqueFd client = r.connect();
  r.spin();
  std::string chunk(64 * 1024, 'x');
  uint64_t offered = 0;
  for (int i = 0; i < 64; ++i) {  // 4 MiB, well past the socket buffer and the bound
    r.port->write(bytes(chunk));
    offered += chunk.size();
  }
  EXPECT_GT(r.port->droppedBytes(), 0u) << "beyond the bound it is dropped, never blocking";
  // What was not dropped arrives, in order, once the client reads.
  uint64_t kept = offered - r.port->droppedBytes();
  std::string got;
  for (int round = 0; round < 10000 && got.size() < kept; ++round) {
    r.spin(1);
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(client.get(), buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      got.append(buf, static_cast<size_t>(n));
    }
  }
  EXPECT_EQ(got.size(), kept);
  EXPECT_EQ(got.find_first_not_of('x'), std::string::npos);
}

TEST(SocketPort, ASecondClientIsRefusedWhileOneIsConnected) {
  Rig r;
  r.make();
  UniqueFd first = r.connect();
  r.spin();
  UniqueFd second = r.connect();
  r.spin();
  char c;
  EXPECT_EQ(::read(second.get(), &c, 1), 0) << "closed by the port";
  r.port->write(bytes("1"));
  EXPECT_EQ(readSome(first.get(), 1), "1") << "the first client keeps the port";
  EXPECT_EQ(r.host.opens, std::vector<bool>{true});
}

TEST(SocketPort, AnExistingPathIsRefusedAndLeftAloneAndOurSocketIsRemoved) {
  Rig r;
  { std::ofstream(r.path) << "user data"; }
  auto p = SocketPort::create(r.path, *r.loop);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("exists"), std::string::npos) << p.error().message;
  std::ifstream in(r.path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "user data");
  ::unlink(r.path.c_str());
  r.make();
  r.port.reset();
  struct stat st {};
  EXPECT_NE(::stat(r.path.c_str(), &st), 0) << "removed with the port";
  EXPECT_FALSE(SocketPort::create(std::string(200, 'p'), *r.loop)) << "too long for sun_path";
}

}  // namespace
}  // namespace ember::devices
