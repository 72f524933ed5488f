// The guest init of `ember exec`: PID 1 of a guest booted from the host's kernel with an
// initramfs that holds this program as /init, the job as /ember/job and the job's modules.
//
// It mounts the kernel filesystems, reads the job (ExecJob), loads the modules, finds the
// virtio-console ports by name, mounts the host's root through virtio-fs (an overlay on a tmpfs
// for `ro`) with the job's shares, switches into it, runs the command as the job's user with
// stdout and stderr on their ports (or an interactive shell on /dev/hvc0), reaps every child
// until the command has ended, writes the ExecStatus line on the status port and powers off.
// Any failure on the way is a `setup-error` line instead. It never returns: an exiting PID 1
// panics Linux (kernel/exit.c: "Attempted to kill init!"), so every path ends in
// reboot(RB_POWER_OFF).
#include <fcntl.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "vmm/init/Command.h"
#include "vmm/init/ConsoleLog.h"
#include "vmm/init/ExecJob.h"
#include "vmm/init/ExecStatus.h"
#include "vmm/init/FileOps.h"
#include "vmm/init/ModuleLoader.h"
#include "vmm/init/MountExecutor.h"
#include "vmm/init/MountPlan.h"
#include "vmm/init/PortDiscovery.h"

namespace ember::init {
namespace {

constexpr const char* kJobPath = "/ember/job";
// Argument and environment lists are bounded by the kernel's ARG_MAX-like limits anyway; a job
// far beyond them is a broken one.
constexpr size_t kMaxJobBytes = 16 << 20;
// A port's name arrives from the host after the driver binds; on a nested, emulated L1 that
// takes far longer than on hardware, so the bound is generous.
constexpr std::chrono::milliseconds kPortTimeout{10000};
constexpr std::chrono::milliseconds kPortPoll{20};
// virtio-console's port 0 as a console (hvc_console): the interactive shell's terminal.
constexpr const char* kShellTerminal = "/dev/hvc0";
constexpr const char* kDefaultShell = "/bin/sh";

[[noreturn]] void powerOff() {
  ::sync();
  ::reboot(RB_POWER_OFF);
  // reboot(2) returns only when it fails; PID 1 must not exit, so it waits to be killed.
  for (;;) {
    ::pause();
  }
}

// After the kernel started /init with no /dev/console in the initramfs, 0, 1 and 2 are
// closed; they get /dev/null so that no later open() lands on them. They stay open for the
// init's life (none of its fds is ever inherited: all are close-on-exec).
void fillStandardDescriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) {
      ::open("/dev/null", O_RDWR);  // the lowest free descriptor, i.e. fd
    }
  }
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& word : words) {
    out += (out.empty() ? "" : " ") + word;
  }
  return out;
}

class Init {
 public:
  [[noreturn]] void run();

 private:
  InitResult<void> prepare();
  InitResult<void> openPorts();
  InitResult<void> openPortGroup(const std::vector<std::string>& names);
  ExecStatus execute();
  void report(const ExecStatus& status);
  int port(const std::string& name) const { return ports_.at(name).get(); }

  ConsoleLog log_;
  ExecJob job_;
  std::map<std::string, OwnedFd> ports_;  // each port opened once: a second open is EBUSY
  bool status_open_ = false;
};

void Init::run() {
  ExecStatus status = ExecStatus::setupError("the init did not run");
  try {
    InitResult<void> prepared = prepare();
    status = prepared.ok() ? execute() : ExecStatus::setupError(prepared.error().message);
  } catch (const std::exception& e) {
    status = ExecStatus::setupError(std::string("the init failed: ") + e.what());
  }
  report(status);
  powerOff();
}

InitResult<void> Init::prepare() {
  InitResult<void> early = performMounts(earlyMounts(), log_);
  fillStandardDescriptors();
  log_ = ConsoleLog::open("/dev/console");
  if (!early.ok()) {
    return early;
  }
  InitResult<std::string> bytes = readFile(kJobPath, kMaxJobBytes);
  if (!bytes.ok()) {
    return InitError{"reading the job: " + bytes.error().message};
  }
  std::string error;
  std::optional<ExecJob> job = ExecJob::decode(bytes.value(), &error);
  if (!job) {
    return InitError{"reading the job " + std::string(kJobPath) + ": " + error};
  }
  job_ = std::move(*job);
  log_.setVerbose(job_.verbose);
  log_.step("job read: " + std::to_string(job_.modules.size()) + " modules, " +
            std::to_string(job_.shares.size()) +
            " shares, command: " + (job_.argv.empty() ? "interactive shell" : joined(job_.argv)));
  for (const std::string& module : job_.modules) {
    log_.step("loading module " + module);
    if (InitResult<void> loaded = loadModule(module); !loaded.ok()) {
      return loaded;
    }
  }
  if (InitResult<void> opened = openPorts(); !opened.ok()) {
    return opened;
  }
  log_.step("assembling the root at " + std::string(kNewRoot));
  if (InitResult<void> root = performMounts(rootMounts(job_), log_); !root.ok()) {
    return root;
  }
  log_.step("switching the root to " + std::string(kNewRoot));
  if (InitResult<void> switched = switchRoot(kNewRoot); !switched.ok()) {
    return switched;
  }
  return performMounts(systemMounts(job_), log_);
}

InitResult<void> Init::openPorts() {
  // The status port on its own first, so that a missing output port is reported on it.
  if (InitResult<void> status = openPortGroup({job_.status_port}); !status.ok()) {
    return status;
  }
  return openPortGroup({job_.stdout_port, job_.stderr_port});
}

InitResult<void> Init::openPortGroup(const std::vector<std::string>& names) {
  log_.step("waiting for the virtio-console ports " + joined(names));
  InitResult<PortMap> found = waitForPorts("/sys", "/dev", names, kPortTimeout, kPortPoll);
  if (!found.ok()) {
    return found.error();
  }
  if (InitResult<void> linked = linkPorts("/dev", found.value()); !linked.ok()) {
    return linked;
  }
  for (const auto& [name, device] : found.value()) {
    if (ports_.contains(name)) {
      continue;
    }
    log_.step("opening port " + name + " (" + device + ")");
    InitResult<OwnedFd> fd = openFile("/dev/virtio-ports/" + name, O_WRONLY | O_NOCTTY);
    if (!fd.ok()) {
      return InitError{"opening the virtio-console port: " + fd.error().message};
    }
    ports_.emplace(name, std::move(fd).value());
    status_open_ = status_open_ || name == job_.status_port;
  }
  return {};
}

ExecStatus Init::execute() {
  Command command;
  command.env = job_.env;
  command.cwd = job_.cwd;
  command.credentials = Credentials{job_.uid, job_.gid};
  OwnedFd input;
  if (job_.argv.empty()) {
    std::string shell = kDefaultShell;
    for (const std::string& entry : job_.env) {
      if (entry.starts_with("SHELL=") && entry.size() > 6) {
        shell = entry.substr(6);
      }
    }
    command.argv = {shell, "-i"};
    InitResult<OwnedFd> terminal = openFile(kShellTerminal, O_RDWR | O_NOCTTY);
    if (!terminal.ok()) {
      return ExecStatus::setupError("opening the shell's terminal: " + terminal.error().message);
    }
    input = std::move(terminal).value();
    command.stdin_fd = command.stdout_fd = command.stderr_fd = input.get();
    command.controlling_terminal = true;
  } else {
    command.argv = job_.argv;
    InitResult<OwnedFd> null = openFile("/dev/null", O_RDONLY);
    if (!null.ok()) {
      return ExecStatus::setupError("opening the command's stdin: " + null.error().message);
    }
    input = std::move(null).value();
    command.stdin_fd = input.get();
    command.stdout_fd = port(job_.stdout_port);
    command.stderr_fd = port(job_.stderr_port);
  }
  log_.step("running " + joined(command.argv) + " in " + command.cwd + " as " +
            std::to_string(job_.uid) + ":" + std::to_string(job_.gid));
  Launch launch = launchCommand(command);
  if (launch.failure) {
    return *launch.failure;
  }
  InitResult<Reaped> reaped = reapUntilExit(launch.pid);
  if (!reaped.ok()) {
    return ExecStatus::setupError(reaped.error().message);
  }
  log_.step("reaped " + std::to_string(reaped.value().others) + " other processes");
  return reaped.value().status;
}

void Init::report(const ExecStatus& status) {
  std::string line = status.encode();
  log_.step("status: " + line.substr(0, line.size() - 1));
  if (status_open_) {
    InitResult<void> written = writeAll(port(job_.status_port), line);
    if (written.ok()) {
      return;
    }
    log_.always("writing the status port " + job_.status_port + ": " + written.error().message);
  }
  log_.always(line.substr(0, line.size() - 1));
}

}  // namespace
}  // namespace ember::init

int main() {
  if (::getpid() != 1) {
    // Powering off is for the guest: never the host's machine, whoever runs this by mistake.
    std::fputs("ember-init: runs only as PID 1 of an ember exec guest\n", stderr);
    return 2;
  }
  std::set_terminate([] { ember::init::powerOff(); });
  ember::init::Init().run();
}
