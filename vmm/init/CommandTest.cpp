// Command: the fork/exec error pipe (exec-failed against an exit status), the child's set-up
// (descriptors, environment and PATH, working directory, ids, controlling terminal) and the
// PID-1 reaping loop, on real processes of the host.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <string>

#include "vmm/init/Command.h"
#include "vmm/init/FileOps.h"
#include "vmm/init/OwnedFd.h"
#include "vmm/init/testing/TempDir.h"

namespace ember::init {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// A pipe whose write end the command gets as stdout (or stderr).
class Capture {
 public:
  Capture() {
    int fds[2] = {-1, -1};
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_ = OwnedFd(fds[0]);
    write_ = OwnedFd(fds[1]);
  }
  int fd() const { return write_.get(); }
  // Everything written, once every writer has closed (the command ended).
  std::string take() {
    write_ = OwnedFd();
    InitResult<std::string> out = readAll(read_.get(), 1 << 20);
    EXPECT_TRUE(out.ok());
    return out.ok() ? out.value() : "";
  }

 private:
  OwnedFd read_;
  OwnedFd write_;
};

class CommandTest : public ::testing::Test {
 protected:
  CommandTest() : null_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

  Command shell(const std::string& script) {
    Command command;
    command.argv = {"/bin/sh", "-c", script};
    command.env = {"PATH=/usr/bin:/bin"};
    command.cwd = "/";
    command.stdin_fd = null_.get();
    command.stdout_fd = out_.fd();
    command.stderr_fd = err_.fd();
    return command;
  }

  // Launches and reaps; a launch failure is returned as the status.
  ExecStatus run(const Command& command) {
    Launch launch = launchCommand(command);
    if (launch.failure) {
      EXPECT_EQ(launch.pid, -1);
      return *launch.failure;
    }
    EXPECT_GT(launch.pid, 0);
    InitResult<Reaped> reaped = reapUntilExit(launch.pid);
    if (!reaped.ok()) {
      ADD_FAILURE() << reaped.error().message;
      return ExecStatus::setupError(reaped.error().message);
    }
    return reaped.value().status;
  }

  OwnedFd null_;
  Capture out_;
  Capture err_;
};

TEST_F(CommandTest, AMissingProgramIsExecFailedEnoentNotAnExitStatus) {
  Command command = shell("");
  command.argv = {"ember-no-such-program-anywhere"};
  ExecStatus status = run(command);
  EXPECT_EQ(status, ExecStatus::execFailed(ENOENT));
  EXPECT_EQ(exitStatusFor(status), 127);
  command.argv = {"/nonexistent/dir/prog"};
  EXPECT_EQ(run(command), ExecStatus::execFailed(ENOENT));
}

TEST_F(CommandTest, AFileThatIsNotExecutableIsExecFailedEacces) {
  // Refused even to root: execve(2) needs an execute bit.
  TempDir dir;
  std::string path = dir.write("not-executable", "#!/bin/sh\nexit 0\n");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  Command command = shell("");
  command.argv = {path};
  ExecStatus status = run(command);
  EXPECT_EQ(status, ExecStatus::execFailed(EACCES));
  EXPECT_EQ(exitStatusFor(status), 126);
}

TEST_F(CommandTest, AnExitStatusIsTheCommands) {
  EXPECT_EQ(run(shell("exit 7")), ExecStatus::exited(7));
  EXPECT_EQ(run(shell("exit 0")), ExecStatus::exited(0));
  // 127 from the command itself is an exit, not a failed exec.
  EXPECT_EQ(run(shell("exit 127")), ExecStatus::exited(127));
}

TEST_F(CommandTest, ASignalThatKillsTheCommandIsReported) {
  ExecStatus status = run(shell("kill -KILL $$"));
  EXPECT_EQ(status, ExecStatus::signaled(SIGKILL));
  EXPECT_EQ(exitStatusFor(status), 137);
}

TEST_F(CommandTest, StdoutAndStderrGoToTheirDescriptorsAndStdinIsTheOneGiven) {
  EXPECT_EQ(run(shell("echo to-out; echo to-err >&2; if read line; then exit 1; fi")),
            ExecStatus::exited(0));
  EXPECT_EQ(out_.take(), "to-out\n");
  EXPECT_EQ(err_.take(), "to-err\n");
}

TEST_F(CommandTest, OnlyTheThreeDescriptorsAreInherited) {
  // /proc/self/fd of the shell: 0, 1, 2 and the one `ls` opens to read the directory.
  EXPECT_EQ(run(shell("ls /proc/self/fd | wc -l")), ExecStatus::exited(0));
  EXPECT_EQ(out_.take(), "4\n");
}

TEST_F(CommandTest, TheEnvironmentIsExactlyTheJobsAndItsPathIsSearched) {
  TempDir dir;
  std::string tool = dir.write("ember-test-tool", "#!/bin/sh\necho \"tool sees $GREETING\"\n");
  ASSERT_EQ(::chmod(tool.c_str(), 0755), 0);
  Command command = shell("");
  command.argv = {"ember-test-tool"};
  command.env = {"PATH=" + dir.path() + ":/usr/bin:/bin", "GREETING=hello"};
  EXPECT_EQ(run(command), ExecStatus::exited(0));
  EXPECT_EQ(out_.take(), "tool sees hello\n");

  Capture out;
  Command env = shell("");
  env.argv = {"env"};  // run directly: a shell would add PWD
  env.env = {"ONLY=this", "PATH=/usr/bin:/bin"};
  env.stdout_fd = out.fd();
  EXPECT_EQ(run(env), ExecStatus::exited(0));
  EXPECT_EQ(out.take(), "ONLY=this\nPATH=/usr/bin:/bin\n");
}

TEST_F(CommandTest, TheCommandRunsInItsWorkingDirectoryAndItsOwnSession) {
  TempDir dir;
  Command command = shell("pwd; test \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$ && echo leader");
  command.cwd = dir.path();
  EXPECT_EQ(run(command), ExecStatus::exited(0));
  EXPECT_EQ(out_.take(), dir.path() + "\nleader\n");
}

TEST_F(CommandTest, AMissingWorkingDirectoryIsASetupErrorNamingIt) {
  Command command = shell("exit 0");
  command.cwd = "/nonexistent-ember-cwd";
  ExecStatus status = run(command);
  EXPECT_EQ(status.kind(), ExecStatus::Kind::SetupError);
  EXPECT_EQ(status.message(),
            "starting the command: chdir to /nonexistent-ember-cwd: No such file or directory");
  EXPECT_EQ(exitStatusFor(status), 125);
}

TEST_F(CommandTest, ABadDescriptorIsASetupError) {
  Command command = shell("exit 0");
  command.stdout_fd = 1000;
  ExecStatus status = run(command);
  EXPECT_EQ(status.message(),
            "starting the command: redirecting stdin, stdout and stderr: Bad file descriptor");
}

TEST_F(CommandTest, NoArgumentsIsASetupError) {
  Command command = shell("");
  command.argv.clear();
  EXPECT_EQ(run(command).message(), "starting the command: no command given");
}

TEST_F(CommandTest, TheCommandRunsAsTheJobsUserWithOnlyItsGroup) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "changing ids needs root";
  }
  Command command = shell("id -u; id -g; id -G");
  command.credentials = Credentials{1234, 2345};
  EXPECT_EQ(run(command), ExecStatus::exited(0));
  EXPECT_EQ(out_.take(), "1234\n2345\n2345\n");
}

TEST_F(CommandTest, StdinBecomesTheControllingTerminalOnlyWhenAsked) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  OwnedFd master_fd(master);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  OwnedFd terminal(::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(terminal.valid());
  // /dev/tty opens only for a process with a controlling terminal.
  Command command = shell("exec 3</dev/tty && echo has-tty");
  command.stdin_fd = terminal.get();
  command.controlling_terminal = true;
  EXPECT_EQ(run(command), ExecStatus::exited(0));
  EXPECT_EQ(out_.take(), "has-tty\n");

  Capture out;
  Command without = shell("exec 3</dev/tty && echo has-tty");
  without.stdin_fd = terminal.get();
  without.stdout_fd = out.fd();
  EXPECT_NE(run(without), ExecStatus::exited(0));
  EXPECT_EQ(out.take(), "");
}

TEST_F(CommandTest, ReapingAsPid1CollectsOrphansUntilTheCommandEnds) {
  // As the child subreaper, this process gets the command's orphans as PID 1 would.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  // The subshell starts a background job and exits at once, orphaning it; the orphan exits
  // while the command still sleeps.
  Launch launch = launchCommand(shell("(sh -c 'exit 3' &); sleep 0.5; exit 6"));
  ASSERT_FALSE(launch.failure.has_value());
  InitResult<Reaped> reaped = reapUntilExit(launch.pid);
  ASSERT_TRUE(reaped.ok()) << reaped.error().message;
  EXPECT_EQ(reaped.value().status, ExecStatus::exited(6));
  EXPECT_EQ(reaped.value().others, 1u);
  // No zombie is left behind: there is no child at all.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_F(CommandTest, ReapingWithoutTheCommandIsAnError) {
  InitResult<Reaped> reaped = reapUntilExit(::getpid());
  ASSERT_FALSE(reaped.ok());
  EXPECT_THAT(reaped.error().message, HasSubstr("No child processes"));
}

}  // namespace
}  // namespace ember::init
