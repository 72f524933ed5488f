// ember exec with no command and stdin on a terminal: the interactive mode's host side, on a real
// pseudo-terminal. The test guest plays the guest init (virtio-console-ports, as in
// ExecTest.cpp) and idles for a while, during which the terminal must be in raw mode for the
// guest's shell; when ember exits the terminal is as it was. The shell itself (on hvc0) needs a
// Linux guest; the emulated-SVM L1 has no terminal to give it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace ember::test {
namespace {

bool canonical(int fd) {
  termios t{};
  return ::tcgetattr(fd, &t) == 0 && (t.c_lflag & ICANON) != 0 && (t.c_lflag & ECHO) != 0;
}

struct TerminalRun {
  int status = -1;  // the wait status
  std::string out;  // what the terminal showed
  bool saw_raw = false;
  bool restored = false;
};

// ember exec with the test guest, on a new pseudo-terminal as its stdin, stdout and stderr, and
// `command` (none: the interactive mode).
TerminalRun runOnTerminal(const char* command) {
  TerminalRun run;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return run;
  if (pid == 0) {
    const char* append =
        "tests=virtio-console-ports,sleep sleep.ms=3000 ports.write=ember.status:exit%200%0a";
    if (command == nullptr) {
      ::execl(EMBER_BINARY, "ember", "exec", "--kernel", EMBER_TESTGUEST, "--modules", "none",
              "--append", append, static_cast<char*>(nullptr));
    } else {
      ::execl(EMBER_BINARY, "ember", "exec", "--kernel", EMBER_TESTGUEST, "--modules", "none",
              "--append", append, "--", command, static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  // A second descriptor on the child's terminal, to watch its modes from here.
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  bool reaped = false;
  while (!reaped) {
    if (slave >= 0 && !canonical(slave)) run.saw_raw = true;
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      char buf[4096];
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) run.out.append(buf, static_cast<size_t>(n));
    }
    reaped = ::waitpid(pid, &run.status, WNOHANG) == pid;
    if (!reaped && std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &run.status, 0);
      run.out += "\n(killed: ember exec did not finish within 90 s)";
      reaped = true;
    }
  }
  run.restored = slave >= 0 && canonical(slave);
  if (slave >= 0) ::close(slave);
  ::close(master);
  return run;
}

bool exitedWith(int status, int code) {
  return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

TEST(ExecTerminal, NoCommandOnATerminalIsAShellInRawModeRestoredAtExit) {
  if (::access("/usr/lib/qemu/virtiofsd", X_OK) != 0 || ::geteuid() != 0) {
    GTEST_SKIP() << "needs virtiofsd and root";
  }
  TerminalRun run = runOnTerminal(nullptr);
  EXPECT_TRUE(exitedWith(run.status, 0)) << "status " << run.status << "\n" << run.out;
  EXPECT_TRUE(run.saw_raw) << "the terminal was never in raw mode\n" << run.out;
  EXPECT_TRUE(run.restored) << "the terminal was not restored";
  EXPECT_EQ(run.out.find("ember exec:"), std::string::npos) << run.out;
}

// With a command, the terminal is the user's: ember reads no stdin and leaves its modes alone.
TEST(ExecTerminal, ACommandLeavesTheTerminalAlone) {
  if (::access("/usr/lib/qemu/virtiofsd", X_OK) != 0 || ::geteuid() != 0) {
    GTEST_SKIP() << "needs virtiofsd and root";
  }
  TerminalRun run = runOnTerminal("true");
  EXPECT_TRUE(exitedWith(run.status, 0)) << "status " << run.status << "\n" << run.out;
  EXPECT_FALSE(run.saw_raw) << "ember exec -- CMD put the terminal in raw mode";
  EXPECT_TRUE(run.restored);
}

}  // namespace
}  // namespace ember::test
