#include "vmm/ExecSession.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "kvm/Log.h"
#include "vmm/CpioWriter.h"
#include "vmm/ElfLoader.h"
#include "vmm/ExecInitramfs.h"
#include "vmm/KernelModules.h"
#include "vmm/KernelRelease.h"
#include "vmm/Machine.h"
#include "vmm/RunRecord.h"
#include "vmm/init/EmbeddedInit.h"
#include "vmm/init/ExecStatus.h"

extern char** environ;

namespace ember::vmm {

namespace {

constexpr int kExitSetupFailed = 125;
constexpr int kExitPanicked = 255;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// A kernel image larger than this is not one (Debian's bzImage is ~8 MiB).
constexpr uint64_t kMaxKernelImage = 256ULL << 20;
constexpr uint64_t kMaxInitrd = 2ULL << 30;
// The kernel log is the guest's writing, into a file in $TMPDIR: bounded (a boot with --verbose
// writes ~100 KiB; a panic's trace a few more).
constexpr uint64_t kMaxKernelLog = 64ULL << 20;

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The absolute, symlink-free path of an existing directory ember can read and search.
Result<std::string> readableDirectory(const std::string& path, const char* what) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return Error::fromErrno(Errc::NotFound, fmt::format("{} {}", what, path));
  }
  if (!isDirectory(resolved)) {
    return makeError(Errc::InvalidArgument, "{} {}: not a directory", what, path);
  }
  if (::access(resolved, R_OK | X_OK) != 0) {
    return Error::fromErrno(Errc::Io, fmt::format("{} {}: cannot read it", what, path));
  }
  return std::string(resolved);
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// The status port's file is the guest's writing: it takes only the first kMaxStatusBytes (so that
// the guest cannot fill $TMPDIR through it), and only they are read (the one line the init writes
// is far shorter; ExecStatus::parse judges the rest).
constexpr size_t kMaxStatusBytes = 4096;

std::optional<std::string> readStatusFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text(kMaxStatusBytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

}  // namespace

ExecHost ExecHost::current() {
  ExecHost host;
  char cwd[PATH_MAX];
  host.cwd = ::getcwd(cwd, sizeof cwd) != nullptr ? cwd : "/";
  host.uid = ::getuid();
  host.gid = ::getgid();
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    host.environment.emplace_back(*e);
  }
  host.stdin_is_terminal = ::isatty(STDIN_FILENO) == 1;
  const char* tmp = std::getenv("TMPDIR");
  host.tmp_dir = tmp != nullptr && *tmp == '/' ? tmp : "/tmp";
  return host;
}

std::vector<std::string> execEnvironment(const std::vector<std::string>& host_environ) {
  static constexpr std::string_view kKept[] = {
      "TERM=", "HOME=", "USER=", "LOGNAME=", "SHELL=", "TZ=", "LANG=", "LC_"};
  std::vector<std::string> env;
  bool have_path = false;
  for (const auto& entry : host_environ) {
    if (entry.find('=') == std::string::npos) continue;
    if (entry.starts_with("PATH=")) {
      env.push_back(entry);
      have_path = true;
      continue;
    }
    for (std::string_view prefix : kKept) {
      if (entry.starts_with(prefix)) {
        env.push_back(entry);
        break;
      }
    }
  }
  if (!have_path) env.insert(env.begin(), std::string("PATH=") + kDefaultPath);
  return env;
}

ExecOutcome execOutcome(const devices::ExitRequest& exit, const std::optional<std::string>& status,
                        const std::string& kernel_log, const std::vector<std::string>& argv) {
  using devices::ExitReason;
  const std::string log_hint = kernel_log.empty() ? "" : " (kernel log: " + kernel_log + ")";
  switch (exit.reason) {
    case ExitReason::GuestPanic:
      return {kExitPanicked, "the guest kernel panicked" + log_hint};
    case ExitReason::Timeout:
      return {exit.status, exit.message + "; the command was stopped"};
    case ExitReason::Signal:
      return {128 + exit.signal, "stopped: " + exit.message};
    case ExitReason::StartupError:
      return {kExitSetupFailed, exit.message + log_hint};
    default:
      break;
  }
  // Only the first line counts; text without a newline is parsed whole, so that the reason says
  // the line is unfinished (the file is read no further than kMaxStatusBytes).
  std::string first_line;
  if (status) {
    size_t newline = status->find('\n');
    first_line = newline == std::string::npos ? *status : status->substr(0, newline + 1);
  }
  std::string parse_error;
  std::optional<init::ExecStatus> parsed;
  if (!first_line.empty()) parsed = init::ExecStatus::parse(first_line, &parse_error);
  if (!parsed) {
    std::string why = !status || status->empty()
                          ? "without reporting the command's status"
                          : "with a status line ember cannot read (" + parse_error + ")";
    return {kExitSetupFailed,
            fmt::format("the guest stopped ({}) {}{}", exit.message, why, log_hint)};
  }
  int code = init::exitStatusFor(*parsed);
  switch (parsed->kind()) {
    case init::ExecStatus::Kind::SetupError:
      return {code, "the guest could not set up: " + parsed->message() + log_hint};
    case init::ExecStatus::Kind::ExecFailed:
      return {code, fmt::format("{}: {}", argv.empty() ? std::string("the shell") : argv[0],
                                ::strerror(parsed->value()))};
    default:
      return {code, ""};
  }
}

Result<std::unique_ptr<ExecSession>> ExecSession::prepare(const ExecRequest& request,
                                                          const ExecHost& host) {
  if (request.argv.empty() && !host.stdin_is_terminal) {
    return makeError(Errc::InvalidArgument,
                     "no command given, and stdin is not a terminal for an interactive shell "
                     "(ember exec --kernel K -- CMD ARGS...)");
  }
  auto scratch = EMBER_TRY(ScratchDirectory::create(host.tmp_dir, "ember-exec."));
  std::unique_ptr<ExecSession> session(new ExecSession(request, std::move(scratch)));
  EMBER_TRY(session->planFileSystems(host));
  session->planJob(host);
  EMBER_TRY(session->planModulesAndInitramfs());
  session->planMachine();
  return session;
}

Result<void> ExecSession::planFileSystems(const ExecHost& host) {
  std::string root = EMBER_TRY(readableDirectory(request_.root, "--root"));
  config_.filesystems.push_back(FsConfig{root, "", kRootTag, !request_.rw, "--root " + root});
  job_.root_tag = kRootTag;
  job_.root_access = request_.rw ? init::Access::ReadWrite : init::Access::ReadOnly;
  for (size_t i = 0; i < request_.shares.size(); ++i) {
    const auto& share = request_.shares[i];
    std::string dir = EMBER_TRY(readableDirectory(share.host, "--share"));
    std::string guest = share.guest.empty() ? dir : share.guest;
    if (guest == "/") {
      return makeError(Errc::InvalidArgument,
                       "--share {}: the guest's / is the root (--root, --rw), not a share",
                       share.host);
    }
    std::string tag = fmt::format("ember-share{}", i);
    config_.filesystems.push_back(FsConfig{dir, "", tag, share.readonly, "--share " + dir});
    job_.shares.push_back(init::ExecShare{
        tag, guest, share.readonly ? init::Access::ReadOnly : init::Access::ReadWrite});
  }
  // The command starts where the user is, seen through the root; outside it, at the guest's /.
  if (root == "/") {
    job_.cwd = host.cwd;
  } else if (host.cwd == root || host.cwd.starts_with(root + "/")) {
    job_.cwd = host.cwd == root ? "/" : host.cwd.substr(root.size());
  } else {
    job_.cwd = "/";
  }
  return {};
}

Result<void> ExecSession::planModulesAndInitramfs() {
  std::string dir;
  ModulePlan plan;
  if (!request_.no_modules) {
    dir = request_.modules;
    if (dir.empty()) {
      auto image = EMBER_TRY(readImageFile(request_.kernel, kMaxKernelImage, "--kernel"));
      std::string release = EMBER_TRY(kernelRelease(image));
      auto found = defaultModulesDir(release);
      if (!found) {
        return makeError(Errc::NotFound,
                         "the kernel is {}, but /lib/modules/{} does not exist: give its modules "
                         "with --modules DIR (e.g. the INSTALL_MOD_PATH of make modules_install, "
                         "then lib/modules/{}), or --modules none if virtio-pci, virtio-console, "
                         "virtio-fs and overlayfs are built in",
                         release, release, release);
      }
      dir = *found;
    }
    auto modules = KernelModules::load(dir);
    if (!modules) {
      return makeError(modules.error().code, "--modules {}: {}", dir, modules.error().message);
    }
    std::vector<std::string> names(std::begin(kExecModules), std::end(kExecModules));
    plan = modules->resolve(names);
    std::vector<std::string> missing;
    for (const auto& wanted : plan.wanted) {
      bool needed = wanted.name != "pvpanic_pci" &&
                    (wanted.name != "overlay" || job_.root_access == init::Access::ReadOnly);
      if (wanted.status == ModuleStatus::Absent && needed) missing.push_back(wanted.name);
    }
    if (!missing.empty()) {
      return makeError(Errc::NotFound,
                       "--modules {}: the kernel has no {} (neither built in nor a module); "
                       "ember exec needs virtio-pci, virtio-console, virtio-fs with FUSE, and "
                       "overlayfs unless --rw",
                       dir, joined(missing));
    }
  }
  auto image = EMBER_TRY(buildExecInitramfs(job_, dir, plan.files, init::embeddedInit()));
  std::vector<uint8_t> initrd;
  if (!request_.initrd.empty()) {
    initrd = EMBER_TRY(readImageFile(request_.initrd, kMaxInitrd, "--initrd"));
  }
  appendArchive(initrd, image);
  config_.initrd_image = std::move(initrd);
  return {};
}

void ExecSession::planJob(const ExecHost& host) {
  job_.env = execEnvironment(host.environment);
  job_.argv = request_.argv;
  job_.uid = host.uid;
  job_.gid = host.gid;
  job_.stdout_port = kStdoutPort;
  job_.stderr_port = kStderrPort;
  job_.status_port = kStatusPort;
  job_.verbose = request_.verbose;
}

void ExecSession::planMachine() {
  const bool interactive = request_.argv.empty();
  status_file_ = scratch_.file("status");
  kernel_log_ = !request_.log.empty() ? request_.log : scratch_.file("kernel.log");
  config_.kernel = request_.kernel;
  config_.cmdline = "console=ttyS0 panic=-1 reboot=k rdinit=/init";
  if (!request_.verbose) config_.cmdline += " quiet";
  if (!request_.append.empty()) config_.cmdline += " " + request_.append;
  config_.memory = request_.memory;
  config_.cpus = request_.cpus;
  config_.kvm_device = request_.kvm_device;
  config_.log_level = request_.verbose ? "info" : "warn";
  config_.report = request_.report;
  config_.pvpanic = true;
  config_.timeout = request_.timeout;
  config_.serial_ports = {
      {kStdoutPort, SerialPortConfig::Kind::Stdout, ""},
      {kStderrPort, SerialPortConfig::Kind::Stderr, ""},
      {kStatusPort, SerialPortConfig::Kind::File, status_file_, kMaxStatusBytes},
  };
  if (request_.verbose) {
    config_.serial_log = "-";
    kernel_log_.clear();
  } else {
    config_.serial_log = kernel_log_;
    config_.serial_log_limit = kMaxKernelLog;
    config_.backend_log = kernel_log_;
  }
  // The interactive shell's terminal is virtio-console port 0 (hvc0), fed by stdin in raw mode;
  // a command gets no stdin from ember (it reads /dev/null in the guest).
  config_.console = interactive ? ConsoleKind::Virtio : ConsoleKind::Serial;
  config_.stdin_input = interactive;
}

ExecOutcome ExecSession::finish(const devices::ExitRequest& exit) {
  // The log is worth pointing at only when something was written to it.
  struct stat st {};
  bool have_log = !kernel_log_.empty() && ::stat(kernel_log_.c_str(), &st) == 0 && st.st_size > 0;
  ExecOutcome outcome =
      execOutcome(exit, readStatusFile(status_file_), have_log ? kernel_log_ : "", request_.argv);
  // Kept only when the line points at the log in it: a start-up error before the guest wrote
  // anything leaves nothing behind.
  bool failed = outcome.status == kExitSetupFailed || outcome.status == kExitPanicked;
  if (failed && have_log && request_.log.empty()) scratch_.keep();
  return outcome;
}

int runExec(const ExecRequest& request) {
  auto report_line = [](const std::string& message) {
    if (!message.empty()) std::fprintf(stderr, "ember exec: %s\n", message.c_str());
  };
  auto session = ExecSession::prepare(request, ExecHost::current());
  if (!session) {
    report_line(session.error().message);
    return kExitSetupFailed;
  }
  const MachineConfig& config = (*session)->machineConfig();
  std::optional<RunReportFile> report;
  if (!config.report.empty()) {
    auto file = RunReportFile::create(config.report);
    if (!file) {
      report_line(file.error().message);
      return kExitSetupFailed;
    }
    report.emplace(std::move(*file));
  }
  RunRecord record;
  {
    auto machine = Machine::create(config);
    if (!machine) {
      record.exit = devices::ExitRequest::startupError(machine.error().message);
    } else {
      record = (*machine)->run();
    }
  }  // the machine is gone: every port's output is written
  ExecOutcome outcome = (*session)->finish(record.exit);
  if (report) {
    if (auto written = report->write(record); !written) report_line(written.error().message);
  }
  report_line(outcome.message);
  return outcome.status;
}

}  // namespace ember::vmm
