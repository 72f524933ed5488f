// Starting, connecting to and stopping virtiofsd.
#include "devices/VirtiofsdProcess.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "kvm/Log.h"
#include "kvm/UnixSocket.h"

namespace ember::devices {

std::string VirtiofsdProcess::binary() {
  const char* env = std::getenv("EMBER_VIRTIOFSD");
  return env != nullptr && *env != '\0' ? env : kDefaultBinary;
}

namespace {

// The child's side, between fork and exec: only async-signal-safe calls, and _exit on failure
// (its status tells the parent, whose connection then fails).
[[noreturn]] void execVirtiofsd(const std::string& exe, const std::string& dir, bool readonly,
                                int listen_fd, int log_fd, const std::vector<char*>& argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) _exit(120);  // ember is already gone
  if (readonly) {
    // A private mount namespace where DIR is a read-only bind of itself (mount_namespaces(7)).
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        ::mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      _exit(121);
    }
  }
  if (::dup2(listen_fd, 3) != 3) _exit(122);  // dup2 clears FD_CLOEXEC on fd 3
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
  if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
  ::dup2(STDERR_FILENO, STDOUT_FILENO);  // ember's stdout is the guest's
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);  // ember blocks SIGTERM for its signalfd
  ::execv(exe.c_str(), argv.data());
  _exit(127);
}

}  // namespace

Result<std::unique_ptr<VirtiofsdProcess>> VirtiofsdProcess::start(const std::string& dir,
                                                                  bool readonly, int log_fd,
                                                                  const std::string& label) {
  const std::string what = label.empty() ? "--fs " + dir : label;
  std::string exe = binary();
  if (::access(exe.c_str(), X_OK) != 0) {
    return makeError(Errc::NotFound,
                     "{}: virtiofsd is not at {} (install qemu-system-common, or set "
                     "EMBER_VIRTIOFSD to its path)",
                     what, exe);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      ::access(dir.c_str(), R_OK | X_OK) != 0) {
    return makeError(Errc::NotFound, "{}: not a directory ember can read", what);
  }
  // The socket, in a private directory that is gone again before this returns.
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string tmpl =
      std::string(runtime != nullptr && *runtime ? runtime : "/tmp") + "/ember-virtiofsd-XXXXXX";
  std::vector<char> tmp(tmpl.begin(), tmpl.end());
  tmp.push_back('\0');
  if (::mkdtemp(tmp.data()) == nullptr) {
    return Error::fromErrno(Errc::Io, fmt::format("{}: mkdtemp {}", what, tmpl));
  }
  std::string sock_dir = tmp.data(), sock_path = sock_dir + "/vhost-user.sock";
  auto cleanup = [&] {
    ::unlink(sock_path.c_str());
    ::rmdir(sock_dir.c_str());
  };
  auto listening = listenUnixSocket(sock_path, 1, /*nonblocking=*/false);
  if (!listening) {
    cleanup();
    return makeError(listening.error().code, "{}: the vhost-user socket: {}", what,
                     listening.error().message);
  }
  UniqueFd listener = std::move(*listening);
  std::string source = "source=" + dir;
  std::vector<std::string> args = {exe,  "--fd=3",     "-o", source,
                                   "-o", "cache=auto", "-o", "log_level=warn"};
  // The namespace sandbox pivot_roots into DIR, which cannot work for the root itself (EBUSY:
  // the bind of / over / is not where the process's root is); chroot(2) into / can.
  if (dir == "/") {
    args.insert(args.end(), {"-o", "sandbox=chroot"});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    cleanup();
    return Error::fromErrno(Errc::Io, fmt::format("{}: fork", what), err);
  }
  if (pid == 0) {
    execVirtiofsd(exe, dir, readonly, listener.get(), log_fd, argv);
  }
  // From here the object owns the child: an error below stops it again.
  std::unique_ptr<VirtiofsdProcess> child(new VirtiofsdProcess(dir, pid, UniqueFd()));
  // The connection waits in the listen backlog until virtiofsd accepts it.
  auto conn = connectUnixSocket(sock_path);
  cleanup();
  if (!conn) {
    return makeError(conn.error().code, "{}: virtiofsd: {}", what, conn.error().message);
  }
  child->socket_ = std::move(*conn);
  log::debug("{}: virtiofsd started (pid {}{})", what, pid, readonly ? ", read-only" : "");
  return child;
}

std::optional<std::string> VirtiofsdProcess::exitStatus() {
  if (reaped_) return "exited";
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  reaped_ = true;
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return fmt::format("was killed by SIG{}", sigabbrev_np(WTERMSIG(status)));
}

VirtiofsdProcess::~VirtiofsdProcess() {
  socket_.reset();
  if (reaped_ || exitStatus()) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (exitStatus()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

}  // namespace ember::devices
