// UringEngine: where io_uring cannot be set up (here: a seccomp filter refusing io_uring_setup,
// as container runtimes install), creating the engine fails with one line naming the fix. The
// engine's I/O is covered, with the other engines', in BlockEngineTest.cpp.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "devices/UringEngine.h"
#include "devices/testing/DenyIoUring.h"

namespace ember::devices {
namespace {

TEST(UringEngine, SetupRefusedFailsWithOneLineNamingTheFix) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg;
    if (!testing::denyIoUringSetup()) {
      msg = "seccomp: cannot install the filter";
    } else {
      auto e = UringEngine::create(8);
      msg = e.ok() ? "created" : e.error().message;
    }
    ssize_t n = ::write(fds[1], msg.data(), msg.size());
    ::_exit(n == static_cast<ssize_t>(msg.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  EXPECT_NE(msg.find("io_uring_setup: Operation not permitted"), std::string::npos) << msg;
  EXPECT_NE(msg.find("kernel.io_uring_disabled=0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("aio=libaio"), std::string::npos) << msg;
}

TEST(UringEngine, RingIsSizedAsAsked) {
  auto e = UringEngine::create(256, 4);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ((*e)->kind(), BlockEngineKind::IoUring);
  EXPECT_GE((*e)->eventFd(), 0);
}

}  // namespace
}  // namespace ember::devices
