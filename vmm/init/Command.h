// Command: starting the job's command in a child process and reaping until it ends.
//
// The child gets its own session, the three descriptors it is given as 0, 1 and 2 (optionally
// the first as its controlling terminal, for the interactive shell), the job's ids and working
// directory, and execvpe(3)'s path search over the job's own PATH. Whether execve(2) succeeded
// is told through a close-on-exec pipe: a successful exec closes it with nothing written, a
// failure writes the failing step and its errno (the fork-exec error pipe of posix_spawn
// implementations). So the parent tells `exec-failed ENOENT` from a command that exited 127.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "vmm/init/ExecStatus.h"
#include "vmm/init/InitError.h"

namespace ember::init {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Command {
  std::vector<std::string> argv;  // argv[0] is searched for in env's PATH; must not be empty
  std::vector<std::string> env;   // the whole environment, NAME=VALUE
  std::string cwd;
  // setgroups({gid}), setgid, setuid in the child; nullopt keeps the caller's (the host tests).
  std::optional<Credentials> credentials;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Makes stdin the new session's controlling terminal (TIOCSCTTY, tty_ioctl(4)).
  bool controlling_terminal = false;
};

// The command is running as `pid`, or it never ran: then `failure` is `exec-failed` (execve
// failed) or `setup-error` (a step before it did, e.g. chdir), and the child has been reaped.
struct Launch {
  pid_t pid = -1;
  std::optional<ExecStatus> failure;
};

Launch launchCommand(const Command& command);

struct Reaped {
  ExecStatus status;  // how `pid` ended
  size_t others = 0;  // other children reaped on the way (the command's orphans, as PID 1)
};

// waitpid(2)s for any child until `pid` has ended, so that, as PID 1, orphans re-parented to
// the init do not stay zombies. Children still running when `pid` ends are left alone.
InitResult<Reaped> reapUntilExit(pid_t pid);

}  // namespace ember::init
