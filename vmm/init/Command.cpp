// Command: fork, the child's set-up and execvpe, the error pipe, and the reaping loop.
#include "vmm/init/Command.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "vmm/init/OwnedFd.h"

namespace ember::init {
namespace {

// What the child writes on the error pipe when a step fails; nothing when execve succeeds.
enum class ChildStep : int32_t {
  Session = 1,
  Descriptors,
  Terminal,
  Groups,
  Group,
  User,
  WorkingDirectory,
  Exec,
};

struct ChildReport {
  ChildStep step;
  int32_t err;
};

std::string describe(ChildStep step, const Command& command) {
  std::string uid = command.credentials ? std::to_string(command.credentials->uid) : "";
  std::string gid = command.credentials ? std::to_string(command.credentials->gid) : "";
  switch (step) {
    case ChildStep::Session:
      return "setsid";
    case ChildStep::Descriptors:
      return "redirecting stdin, stdout and stderr";
    case ChildStep::Terminal:
      return "making stdin the controlling terminal (TIOCSCTTY)";
    case ChildStep::Groups:
      return "setgroups to gid " + gid;
    case ChildStep::Group:
      return "setgid " + gid;
    case ChildStep::User:
      return "setuid " + uid;
    case ChildStep::WorkingDirectory:
      return "chdir to " + command.cwd;
    case ChildStep::Exec:
      break;
  }
  return "execve " + command.argv.front();
}

// execvpe(3) takes char* const[] for historical reasons and does not write through it; the
// pointers are into strings that outlive the exec.
std::vector<char*> cStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const std::string& s : strings) {
    out.push_back(const_cast<char*>(s.c_str()));
  }
  out.push_back(nullptr);
  return out;
}

// The child's side, from fork to execvpe. Everything was allocated before fork; a failing step
// reports itself on `report_fd` (>= 3, close-on-exec) and exits.
[[noreturn]] void runChild(const Command& command, char* const* argv, char* const* envp,
                           int report_fd) {
  auto fail = [&](ChildStep step) {
    ChildReport report{step, errno};
    // A failed write leaves the parent with EOF and an exit status of 127; nothing better is
    // possible here.
    (void)!::write(report_fd, &report, sizeof report);
    ::_exit(127);
  };
  if (::setsid() < 0) {
    fail(ChildStep::Session);
  }
  // Each source is first copied above 2, so that a source that is itself 0, 1 or 2 is neither
  // overwritten by another's dup2 nor left close-on-exec (dup2 of an fd onto itself keeps the
  // flag).
  const int sources[3] = {command.stdin_fd, command.stdout_fd, command.stderr_fd};
  int copies[3];
  for (int i = 0; i < 3; ++i) {
    copies[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, 3);
    if (copies[i] < 0) {
      fail(ChildStep::Descriptors);
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (::dup2(copies[i], i) < 0) {
      fail(ChildStep::Descriptors);
    }
  }
  // Whatever the caller left open without close-on-exec stays out of the command too
  // (close_range(2), Linux 5.11+; an older kernel refuses the call and the caller's own
  // close-on-exec flags are what is left).
  (void)::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  if (command.controlling_terminal && ::ioctl(0, TIOCSCTTY, 0) < 0) {
    fail(ChildStep::Terminal);
  }
  if (command.credentials) {
    // Groups first: once the uid is dropped the process may no longer change them.
    gid_t gid = command.credentials->gid;
    if (::setgroups(1, &gid) < 0) {
      fail(ChildStep::Groups);
    }
    if (::setgid(gid) < 0) {
      fail(ChildStep::Group);
    }
    if (::setuid(command.credentials->uid) < 0) {
      fail(ChildStep::User);
    }
  }
  // After the ids change, so that the directory is entered with the command's permissions.
  if (::chdir(command.cwd.c_str()) < 0) {
    fail(ChildStep::WorkingDirectory);
  }
  // glibc's execvpe searches the PATH of the calling process's environment (posix/execvpe.c
  // reads getenv("PATH")), not of envp; the job's PATH must decide.
  environ = const_cast<char**>(envp);  // the array is not written through, as for execvpe
  ::execvpe(argv[0], argv, envp);
  fail(ChildStep::Exec);
  ::_exit(127);  // not reached: fail() exits
}

pid_t waitFor(pid_t pid, int* wait_status) {
  pid_t r;
  do {
    r = ::waitpid(pid, wait_status, 0);
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

Launch launchCommand(const Command& command) {
  if (command.argv.empty()) {
    return Launch{-1, ExecStatus::setupError("starting the command: no command given")};
  }
  std::vector<char*> argv = cStrings(command.argv);
  std::vector<char*> envp = cStrings(command.env);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Launch{
        -1, ExecStatus::setupError(InitError::fromErrno("starting the command: pipe2").message)};
  }
  OwnedFd read_end(pipe_fds[0]);
  // Above 2, so that the child's dup2 onto 0..2 cannot close it.
  OwnedFd write_end(::fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, 3));
  int dup_errno = errno;
  ::close(pipe_fds[1]);
  if (!write_end.valid()) {
    return Launch{-1, ExecStatus::setupError(
                          InitError::fromErrno("starting the command: fcntl", dup_errno).message)};
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    return Launch{
        -1, ExecStatus::setupError(InitError::fromErrno("starting the command: fork").message)};
  }
  if (pid == 0) {
    runChild(command, argv.data(), envp.data(), write_end.get());
  }
  write_end = OwnedFd();  // only the child's copy is left: EOF once it execs or exits
  ChildReport report{};
  size_t got = 0;
  while (got < sizeof report) {
    // The report is a trivially copyable struct, read as its bytes.
    ssize_t n = ::read(read_end.get(), reinterpret_cast<char*>(&report) + got, sizeof report - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  if (got == 0) {
    return Launch{pid, std::nullopt};
  }
  int wait_status = 0;
  waitFor(pid, &wait_status);
  if (got != sizeof report) {
    return Launch{-1, ExecStatus::setupError("starting the command: a truncated report from the "
                                             "child")};
  }
  if (report.step == ChildStep::Exec) {
    return Launch{-1, ExecStatus::execFailed(report.err)};
  }
  return Launch{
      -1, ExecStatus::setupError("starting the command: " + describe(report.step, command) + ": " +
                                 std::strerror(report.err))};
}

InitResult<Reaped> reapUntilExit(pid_t pid) {
  size_t others = 0;
  for (;;) {
    int wait_status = 0;
    pid_t reaped = waitFor(-1, &wait_status);
    if (reaped < 0) {
      return InitError::fromErrno("waiting for the command (pid " + std::to_string(pid) + ")");
    }
    if (reaped != pid) {
      ++others;
      continue;
    }
    if (std::optional<ExecStatus> status = ExecStatus::fromWaitStatus(wait_status)) {
      return Reaped{*status, others};
    }
  }
}

}  // namespace ember::init
