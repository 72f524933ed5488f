// One `ember exec` run: the ExecRequest turned into a machine to boot (the host's root and shares
// as virtio-fs devices, three named virtio-console ports, pvpanic, the kernel console into a log),
// an initramfs holding ember's guest init, its job and the kernel modules the guest needs, and
// at the end ember exec's exit status for how the run went.
//
// Exit status (timeout(1) and `docker run`): the command's own; 128+N when it died of signal N;
// 126 when it could not be executed, 127 when it was not found; 124 when --timeout ran out; 125
// when ember or the guest could not set up, with one line saying which; 255 when the guest
// kernel panicked.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/VmControl.h"
#include "kvm/Result.h"
#include "vmm/ExecRequest.h"
#include "vmm/MachineConfig.h"
#include "vmm/ScratchDirectory.h"
#include "vmm/init/ExecJob.h"

namespace ember::vmm {

// What of the host's process the command takes with it into the guest.
struct ExecHost {
  std::string cwd;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<std::string> environment;  // NAME=VALUE, all of ember's; the job keeps a few
  bool stdin_is_terminal = false;
  std::string tmp_dir = "/tmp";  // where the run's scratch directory is made ($TMPDIR)

  static ExecHost current();
};

// The exit status, and the one line (if any) that says why on stderr.
struct ExecOutcome {
  int status = 0;
  std::string message;
};

// The kernel modules ember exec asks for, by modprobe name.
inline constexpr const char* kExecModules[] = {"virtio_pci", "virtio_console", "fuse",
                                               "virtiofs",   "overlay",        "pvpanic_pci"};

// The job's environment: PATH (a default when the host has none), TERM, HOME, USER, LOGNAME,
// SHELL, TZ, LANG and LC_*.
std::vector<std::string> execEnvironment(const std::vector<std::string>& host_environ);

// ember exec's status for how the run ended: `exit` (the machine's), the status port's text
// (nullopt: nothing arrived) and where the kernel log is, to point at on a failure.
ExecOutcome execOutcome(const devices::ExitRequest& exit, const std::optional<std::string>& status,
                        const std::string& kernel_log, const std::vector<std::string>& argv);

class ExecSession {
 public:
  static constexpr const char* kRootTag = "ember-root";
  static constexpr const char* kStdoutPort = "ember.stdout";
  static constexpr const char* kStderrPort = "ember.stderr";
  static constexpr const char* kStatusPort = "ember.status";

  // Checks the request against the host (root, shares, modules, the kernel's release), builds the
  // initramfs, and makes the run's scratch directory. Errors are one line, for status 125.
  static Result<std::unique_ptr<ExecSession>> prepare(const ExecRequest& request,
                                                      const ExecHost& host);

  const MachineConfig& machineConfig() const { return config_; }
  const init::ExecJob& job() const { return job_; }
  // Where the kernel console goes (--log, or the scratch directory's kernel.log).
  const std::string& kernelLog() const { return kernel_log_; }

  // After the machine is gone (its outputs flushed): the outcome, from the machine's exit and the
  // status port's file. On a failure the scratch directory (and with it the kernel log) is kept.
  ExecOutcome finish(const devices::ExitRequest& exit);

 private:
  ExecSession(const ExecRequest& request, ScratchDirectory scratch)
      : request_(request), scratch_(std::move(scratch)) {}
  Result<void> planFileSystems(const ExecHost& host);
  void planJob(const ExecHost& host);
  Result<void> planModulesAndInitramfs();
  void planMachine();

  ExecRequest request_;
  ScratchDirectory scratch_;
  MachineConfig config_;
  init::ExecJob job_;
  std::string status_file_;
  std::string kernel_log_;
};

// The whole of `ember exec`: prepare, boot, run, and the outcome (its line printed to stderr).
int runExec(const ExecRequest& request);

}  // namespace ember::vmm
