// --serial-port on the real ember: a file port's file is created, a socket port's socket exists
// while ember runs, takes a client, and is gone after exit; a path that exists or cannot be made
// is one error line before the guest runs.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "Process.h"

namespace ember::test {
namespace {

bool isSocket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool connects(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

TEST(SerialPort, FileAndSocketPortsLiveAsLongAsEmber) {
  TempDir dir;
  std::string log = dir.file("a.log"), sock = dir.file("b.sock");
  bool seen_socket = false, connected = false;
  ProcessOptions o;
  o.timeout_ms = 30000;
  o.on_tick = [&](pid_t, const std::string&) {
    if (!seen_socket && isSocket(sock)) {
      seen_socket = true;
      connected = connects(sock);
    }
  };
  auto r = runEmber(
      {"run", "--kernel", EMBER_TESTGUEST, "--serial-port", "a=file:" + log, "--serial-port",
       "b=socket:" + sock, "--log-level", "debug", "--cmdline", "tests=sleep sleep.ms=1500"},
      o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(seen_socket) << describe(r);
  EXPECT_TRUE(connected) << describe(r);
  EXPECT_NE(r.err.find("client connected"), std::string::npos) << describe(r);
  EXPECT_FALSE(isSocket(sock)) << "removed when ember exits";
  struct stat st {};
  EXPECT_EQ(::stat(log.c_str(), &st), 0) << "the file port's file is created";
}

TEST(Hostile, Case39_SerialPortSocketPathThatExists) {
  TempDir dir;
  std::string path = dir.file("taken");
  std::ofstream(path) << "keep me";
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--serial-port", "p=socket:" + path}),
      "the path exists");
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST(Hostile, Case39_SerialPortFileThatCannotBeCreated) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--serial-port",
                               "p=file:/nonexistent-ember-dir/out.log"}),
                     "/nonexistent-ember-dir/out.log");
}

TEST(Hostile, Case39_SerialPortBadName) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--serial-port", "a/b=stdio"}),
                     "the name must be");
}

}  // namespace
}  // namespace ember::test
