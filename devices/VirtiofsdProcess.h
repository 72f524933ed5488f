// virtiofsd as a child of ember (`--fs DIR`): Debian's /usr/lib/qemu/virtiofsd (qemu-system-common,
// QEMU 7.2's C daemon), or the program EMBER_VIRTIOFSD names. Ember makes the vhost-user socket
// itself, in a private directory: it binds and listens, starts virtiofsd with the listening socket
// as fd 3 (`--fd=3`), connects, and removes the socket file and its directory at once, so that
// nothing is left on the file system whatever happens next. With `readonly`, virtiofsd runs in a
// mount namespace of its own where DIR is a read-only bind mount: the guest cannot write through
// it whatever it sends (virtiofsd 7.2 has no read-only option).
//
// The child dies with ember (PR_SET_PDEATHSIG, so a crash or SIGKILL of ember leaves no stray
// process); when the object goes, the child gets SIGTERM, then SIGKILL after a second, and is
// reaped.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class VirtiofsdProcess {
 public:
  static constexpr const char* kDefaultBinary = "/usr/lib/qemu/virtiofsd";

  // The binary: $EMBER_VIRTIOFSD, else kDefaultBinary.
  static std::string binary();
  // `log_fd`: where the child's stdout and stderr go (-1: ember's stderr). `label` starts every
  // error message: the option the user gave (default "--fs DIR").
  static Result<std::unique_ptr<VirtiofsdProcess>> start(const std::string& dir, bool readonly,
                                                         int log_fd = -1,
                                                         const std::string& label = "");
  ~VirtiofsdProcess();
  VirtiofsdProcess(const VirtiofsdProcess&) = delete;
  VirtiofsdProcess& operator=(const VirtiofsdProcess&) = delete;

  // The frontend's end of the vhost-user connection (taken once).
  UniqueFd takeSocket() { return std::move(socket_); }
  pid_t pid() const { return pid_; }
  // The child's exit, if it has exited (without waiting): "exited with status N", "killed by
  // SIGN".
  std::optional<std::string> exitStatus();
  std::string describe() const { return "virtiofsd for " + dir_; }

 private:
  VirtiofsdProcess(std::string dir, pid_t pid, UniqueFd socket)
      : dir_(std::move(dir)), pid_(pid), socket_(std::move(socket)) {}
  std::string dir_;
  pid_t pid_;
  UniqueFd socket_;
  bool reaped_ = false;
};

}  // namespace ember::devices
