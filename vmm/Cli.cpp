// The CLI11 application: options, validation and help text.
#include "vmm/Cli.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <vector>

namespace ember::vmm {

Result<CliOutcome> parseCommandLine(int argc, const char* const* argv) {
  CLI::App app{"Ember: a KVM micro-VMM that boots Linux and its own test guest.", "ember"};
  app.set_version_flag("--version", "ember " EMBER_VERSION);
  app.require_subcommand(1);
  app.footer(
      "ember exec runs one command in a guest (ember exec --help has its own exit statuses). "
      "ember run's exit status: 0 when the guest powers off or resets, the guest's value when it "
      "writes the "
      "debug-exit port (0xf4), 1 for a configuration or start-up error, 3 when the guest "
      "crashes the vCPU (triple fault, KVM internal error), 4 when the guest kernel panics "
      "(with --pvpanic), 124 when --timeout ran out, 128+N after signal N. "
      "ember run --report FILE writes the same outcome, with every vCPU's exits and every "
      "device's counters, as one JSON object.");

  CLI::App* run = app.add_subcommand("run", "Boot a kernel in a new VM and run it to completion.");
  // An empty string is never a usable file name or size; CLI11 would otherwise accept `--kernel ""`
  // and leave the error to a later open(2) with a confusing message (found by CommandLineFuzzer).
  const CLI::Validator non_empty(
      [](std::string& value) -> std::string {
        return value.empty() ? "an empty value is not allowed" : std::string();
      },
      "", "NON_EMPTY");
  MachineConfig cfg;
  std::string memory = "256M";
  CLI::Option* kernel_opt =
      run->add_option("--kernel", cfg.kernel,
                      "Kernel to boot: a Linux bzImage (boot protocol 2.10 or later, entered at "
                      "its 64-bit entry), a PVH ELF (Linux vmlinux, the test guest) or a plain "
                      "64-bit ELF (required unless --api-sock or --config-file gives it)")
          ->check(non_empty);
  run->add_option("--initrd", cfg.initrd,
                  "Initial ramdisk: boot_params.ramdisk_* for a bzImage, the first PVH module "
                  "otherwise")
      ->check(non_empty);
  run->add_option("--cmdline", cfg.cmdline, "Kernel command line");
  run->add_option("--memory,-m", memory,
                  "Guest RAM: a size with a K, M, G or T suffix (plain numbers are MiB)")
      ->capture_default_str();
  run->add_option("--cpus", cfg.cpus, "Number of vCPUs")
      ->check(CLI::Range(1u, 254u))
      ->capture_default_str();
  run->add_option("--log-level", cfg.log_level, "Log verbosity on stderr")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  run->add_option("--kvm-device", cfg.kvm_device, "KVM device node")
      ->check(non_empty)
      ->capture_default_str();
  std::vector<std::string> disks;
  run->add_option("--disk", disks,
                  "Attach a virtio-blk disk: "
                  "PATH[,readonly][,serial=ID][,ioeventfd=off][,poll=off]"
                  "[,aio=libaio|io_uring|sync][,num-queues=N] (aio: the host I/O engine, default "
                  "libaio; num-queues: request queues, default one per vCPU; repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  std::string console = "serial";
  run->add_option("--console", console,
                  "Which device stdin feeds: 'serial' (COM1) or 'virtio' (virtio-console port 0); "
                  "output of both reaches stdout")
      ->check(CLI::IsMember({"serial", "virtio"}))
      ->capture_default_str();
  run->add_flag("--rng", cfg.rng, "Attach a virtio-rng device fed by getrandom(2)");
  run->add_option("--serial-log", cfg.serial_log,
                  "Where COM1 (the serial console, ttyS0) writes: a FILE (created or truncated), "
                  "or - for stderr (default: stdout)")
      ->check(non_empty);
  std::vector<std::string> filesystems;
  run->add_option("--fs", filesystems,
                  "Share a host directory through virtio-fs: DIR[,tag=T][,readonly] starts "
                  "virtiofsd (/usr/lib/qemu/virtiofsd, or $EMBER_VIRTIOFSD) as ember's child, "
                  "stopped when ember exits (tag default fs0, fs1, ...; readonly: the directory is "
                  "read-only to the guest); socket=PATH,tag=T connects to a vhost-user backend "
                  "someone else started. The guest mounts it with mount -t virtiofs TAG DIR "
                  "(repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  std::vector<std::string> serial_ports;
  run->add_option(
         "--serial-port", serial_ports,
         "A named virtio-console port (VIRTIO_CONSOLE_F_MULTIPORT), /dev/virtio-ports/NAME "
         "in the guest: NAME=stdio (stdout, and stdin instead of the console), NAME=stdout "
         "or NAME=stderr (output only), "
         "NAME=file:PATH (guest output into PATH) or NAME=socket:PATH (a unix socket "
         "ember listens on, one client at a time) (repeatable, up to 31)")
      ->take_all()
      ->allow_extra_args(false);
  std::string vsock;
  run->add_option("--vsock", vsock,
                  "A virtio-vsock device on the kernel's vhost-vsock (/dev/vhost-vsock): "
                  "cid=N, the guest's context ID, 3 or more and not another VM's; the host "
                  "reaches the guest with AF_VSOCK to that CID, the guest the host at CID 2");
  std::vector<std::string> nets;
  run->add_option("--net", nets,
                  "Attach a virtio-net device on a tap: "
                  "tap=NAME[,mac=..][,mtu=N][,ioeventfd=off][,poll=off][,vhost=on|off|auto] "
                  "(an existing tap is used; a missing one is created, which needs "
                  "CAP_NET_ADMIN; vhost=on has the kernel's vhost-net (/dev/vhost-net) move the "
                  "frames, auto falls back to ember's own device where it cannot be opened; "
                  "repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  std::string poll_us = "auto";
  run->add_option("--poll-us", poll_us,
                  "How long the event loop polls the queues of devices with ioeventfd on before "
                  "it sleeps, asking the guest not to kick meanwhile: 'auto' adapts the time to "
                  "how soon work follows work (up to 50 us, as QEMU's poll-max-ns), 0 never "
                  "polls, N polls N microseconds after every event (a device's poll=off opts it "
                  "out)")
      ->capture_default_str();
  double timeout = 0;
  run->add_option("--timeout", timeout,
                  "Stop the VM after S seconds of run time and exit with status 124, as "
                  "timeout(1) does")
      ->check(CLI::PositiveNumber);
  run->add_flag(
      "--pvpanic", cfg.pvpanic,
      "Attach a pvpanic-pci device (QEMU's 1b36:0011, Linux's pvpanic-pci driver): a guest "
      "kernel panic ends the VM at once with exit status 4");
  run->add_option("--report", cfg.report,
                  "When ember exits, write the run record to FILE: one JSON object with the exit "
                  "(reason, status, details), the run time, each vCPU's exits by kind and each "
                  "virtio device's interface, kicks, interrupts and counters (README.md)")
      ->check(non_empty);
  std::string balloon;
  run->add_option("--balloon", balloon,
                  "Attach a virtio-balloon device whose initial target takes SIZE away from the "
                  "guest (e.g. 128M)")
      ->check(non_empty);

  RestoreSource restore;
  CLI::Option* restore_opt =
      run->add_option("--restore", restore.state_path,
                      "Start the VM a snapshot saved (PUT /snapshot/create) instead of booting a "
                      "kernel: STATE is its state file; give its memory file with --mem. The "
                      "machine is the saved one; --disk and --net replace its disks' images and "
                      "its interfaces' taps, in order")
          ->check(non_empty);
  CLI::Option* mem_opt =
      run->add_option("--mem", restore.mem_path,
                      "With --restore: the snapshot's memory file, mapped copy-on-write (never "
                      "written) so that RAM loads as the guest touches it")
          ->check(non_empty);
  CLI::Option* resume_opt = run->add_flag(
      "--resume", restore.resume,
      "With --restore: run at once (without it the VM starts paused, for PATCH /vm Resumed on "
      "--api-sock)");

  ApiOptions api;
  run->add_option("--api-sock", api.sock,
                  "Serve Firecracker's REST API (HTTP/1.1, JSON) on this unix socket, mode 0600; "
                  "without --kernel or --config-file, ember waits for the VM to be configured "
                  "and started through it (PUT /boot-source, ..., PUT /actions InstanceStart). "
                  "README.md lists the endpoints")
      ->check(non_empty);
  CLI::Option* config_file_opt =
      run->add_option("--config-file", api.config_file,
                      "Boot the VM that FILE describes, in Firecracker's config-file layout "
                      "(\"boot-source\", \"drives\", \"machine-config\", "
                      "\"network-interfaces\"), at once")
          ->check(non_empty);
  CLI::Option* no_api_opt =
      run->add_flag("--no-api", api.no_api, "With --config-file: serve no API (no --api-sock)");
  run->add_option("--id", api.id, "The instance's id, as GET / reports it")
      ->check(non_empty)
      ->capture_default_str();

  ExecRequest exec_request;
  std::string exec_memory = "512M";
  std::string exec_modules;
  std::vector<std::string> exec_shares;
  double exec_timeout = 0;
  CLI::App* exec = app.add_subcommand(
      "exec",
      "Boot a kernel with the host's files as its root, run one command in it, and exit with "
      "the command's status (its stdout and stderr are ember's).");
  exec->footer(
      "The guest sees the host's root (or --root) read-only through virtio-fs, under a tmpfs "
      "overlay that takes its writes (--rw writes through), plus each --share read-write. The "
      "command runs in the current directory, as the current user, with PATH, TERM, HOME, USER, "
      "LANG and LC_* from here, and stdin from /dev/null; with no CMD and stdin on a terminal, "
      "an interactive shell. The guest kernel needs virtio-pci, virtio-console, virtio-fs (FUSE) "
      "and overlayfs, built in or as modules in --modules. Needs virtiofsd "
      "(/usr/lib/qemu/virtiofsd from qemu-system-common, or $EMBER_VIRTIOFSD).\n"
      "Exit status: the command's; 128+N when it died of signal N; 126 when it could not be "
      "executed, 127 when it was not found; 124 when --timeout ran out; 125 when ember or the "
      "guest could not set up (one line says which); 255 when the guest kernel panicked.");
  exec->add_option("--kernel", exec_request.kernel, "Kernel to boot: a Linux bzImage")
      ->required()
      ->check(non_empty);
  exec->add_option("--initrd", exec_request.initrd,
                   "An initrd that ember's own initramfs is appended to")
      ->check(non_empty);
  exec->add_option("--modules", exec_modules,
                   "The kernel's modules directory, with modules.dep (default: "
                   "/lib/modules/<the bzImage's release>); 'none' when everything needed is "
                   "built in")
      ->check(non_empty);
  exec->add_option("--root", exec_request.root, "Host directory that is the guest's root")
      ->check(non_empty)
      ->capture_default_str();
  exec->add_flag("--rw", exec_request.rw,
                 "Let the guest write through to the root (default: its writes go to a tmpfs "
                 "and are lost at exit)");
  exec->add_option("--share", exec_shares,
                   "HOST[:GUEST[:ro]]: a host directory the guest sees at GUEST (default: the "
                   "same path), read-write unless ro (repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  exec->add_option("--timeout", exec_timeout,
                   "Stop the VM after S seconds and exit with status 124, as timeout(1) does")
      ->check(CLI::PositiveNumber);
  exec->add_option("--cpus", exec_request.cpus, "Number of vCPUs")
      ->check(CLI::Range(1u, 254u))
      ->capture_default_str();
  exec->add_option("--memory,-m", exec_memory,
                   "Guest RAM: a size with a K, M, G or T suffix (plain numbers are MiB)")
      ->capture_default_str();
  exec->add_flag("--verbose,-v", exec_request.verbose,
                 "Show the kernel's console, the guest init's steps and ember's log on stderr");
  exec->add_option("--log", exec_request.log,
                   "Write the kernel's console (and virtiofsd's messages) to FILE (default: a "
                   "file in $TMPDIR, removed after a run that worked, named after one that did "
                   "not)")
      ->check(non_empty);
  exec->add_option("--append", exec_request.append, "More words for the kernel command line");
  exec->add_option("--kvm-device", exec_request.kvm_device, "KVM device node")
      ->check(non_empty)
      ->capture_default_str();
  exec->add_option("--report", exec_request.report,
                   "When ember exits, write the run record to FILE (as ember run --report)")
      ->check(non_empty);
  exec->add_option("command", exec_request.argv, "The command and its arguments, after --");

  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) {
    args.emplace_back(argv[i]);
  }
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    return CliOutcome(CliPrint{app.help()});
  } catch (const CLI::CallForAllHelp&) {
    return CliOutcome(CliPrint{app.help("", CLI::AppFormatMode::All)});
  } catch (const CLI::CallForVersion&) {
    return CliOutcome(CliPrint{"ember " EMBER_VERSION "\n"});
  } catch (const CLI::ParseError& e) {
    // Help requested on the subcommand surfaces as CallForHelp too; everything else is an error.
    std::string what = e.what();
    if (what.empty()) {
      what = "invalid command line";
    }
    return makeError(Errc::InvalidArgument, "{} (see ember {} --help)", what,
                     exec->parsed() ? "exec" : "run");
  }
  if (exec->parsed()) {
    auto mem = parseMemorySize(exec_memory);
    if (!mem) {
      return makeError(Errc::InvalidArgument, "--memory: {}", mem.error().message);
    }
    exec_request.memory = *mem;
    if (exec_modules == "none") {
      exec_request.no_modules = true;
    } else {
      exec_request.modules = exec_modules;
    }
    for (const auto& text : exec_shares) {
      exec_request.shares.push_back(EMBER_TRY(parseShareSpec(text)));
    }
    if (exec_timeout > 0) exec_request.timeout = exec_timeout;
    return CliOutcome(CliExec{std::move(exec_request)});
  }
  if (no_api_opt->count() > 0 && config_file_opt->count() == 0) {
    return makeError(Errc::InvalidArgument, "--no-api needs --config-file (what else would boot?)");
  }
  if (no_api_opt->count() > 0 && !api.sock.empty()) {
    return makeError(Errc::InvalidArgument, "--no-api and --api-sock contradict each other");
  }
  if (restore_opt->count() > 0) {
    if (mem_opt->count() == 0) {
      return makeError(Errc::InvalidArgument,
                       "--restore needs --mem, the snapshot's memory file (see ember run --help)");
    }
    for (const char* name :
         {"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--config-file", "--console",
          "--serial-port", "--fs", "--rng", "--balloon", "--pvpanic", "--vsock"}) {
      if (run->count(name) > 0) {
        return makeError(Errc::InvalidArgument,
                         "{} and --restore: the machine is the one the snapshot saved", name);
      }
    }
    if (!restore.resume && api.sock.empty()) {
      return makeError(Errc::InvalidArgument,
                       "--restore without --resume starts the VM paused: give --resume, or "
                       "--api-sock to resume it with PATCH /vm");
    }
    cfg.restore = restore;
  } else if (mem_opt->count() > 0 || resume_opt->count() > 0) {
    return makeError(Errc::InvalidArgument, "--mem and --resume go with --restore");
  }
  if (config_file_opt->count() > 0) {
    for (const char* name :
         {"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--disk", "--net"}) {
      if (run->count(name) > 0) {
        return makeError(Errc::InvalidArgument,
                         "{} and --config-file: the file describes the machine; put it there",
                         name);
      }
    }
  } else if (kernel_opt->count() == 0 && api.sock.empty() && !cfg.restore) {
    return makeError(Errc::InvalidArgument,
                     "--kernel is required (or --api-sock, to configure the VM through the API, "
                     "or --config-file) (see ember run --help)");
  }
  auto mem = parseMemorySize(memory);
  if (!mem) {
    return makeError(Errc::InvalidArgument, "--memory: {}", mem.error().message);
  }
  cfg.memory = *mem;
  for (const auto& d : disks) {
    auto disk = parseDiskSpec(d);
    if (!disk) {
      return std::move(disk).error();
    }
    cfg.disks.push_back(std::move(*disk));
  }
  cfg.console = console == "virtio" ? ConsoleKind::Virtio : ConsoleKind::Serial;
  if (timeout > 0) cfg.timeout = timeout;
  if (poll_us != "auto") {
    uint32_t us = 0;
    auto [p, ec] = std::from_chars(poll_us.data(), poll_us.data() + poll_us.size(), us);
    if (ec != std::errc() || p != poll_us.data() + poll_us.size() || us > 1000000) {
      return makeError(Errc::InvalidArgument,
                       "--poll-us: '{}' is not auto or a number of microseconds in 0..1000000",
                       poll_us);
    }
    cfg.poll_us = us;
  }
  for (const auto& text : serial_ports) {
    auto port = parseSerialPortSpec(text);
    if (!port) {
      return std::move(port).error();
    }
    for (const auto& other : cfg.serial_ports) {
      if (other.name == port->name) {
        return makeError(Errc::InvalidArgument, "--serial-port {}: the name is given twice",
                         port->name);
      }
      if (other.kind == SerialPortConfig::Kind::Stdio &&
          port->kind == SerialPortConfig::Kind::Stdio) {
        return makeError(Errc::InvalidArgument,
                         "--serial-port {}: only one port can be stdio (it takes stdin)",
                         port->name);
      }
    }
    cfg.serial_ports.push_back(std::move(*port));
  }
  for (const auto& text : filesystems) {
    auto fs = parseFsSpec(text, cfg.filesystems.size());
    if (!fs) {
      return std::move(fs).error();
    }
    for (const auto& other : cfg.filesystems) {
      if (other.tag == fs->tag) {
        return makeError(Errc::InvalidArgument, "--fs {}: the tag {} is given twice", text,
                         fs->tag);
      }
    }
    cfg.filesystems.push_back(std::move(*fs));
  }
  if (cfg.serial_ports.size() > 31) {
    return makeError(Errc::InvalidArgument, "--serial-port: at most 31 ports, {} given",
                     cfg.serial_ports.size());
  }
  if (run->count("--vsock") > 0) {
    cfg.vsock_cid = EMBER_TRY(parseVsockSpec(vsock));
  }
  for (const auto& n : nets) {
    auto net = parseNetSpec(n);
    if (!net) {
      return std::move(net).error();
    }
    cfg.nets.push_back(std::move(*net));
  }
  if (!balloon.empty()) {
    auto size = parseMemorySize(balloon);
    if (!size) {
      return makeError(Errc::InvalidArgument, "--balloon: {}", size.error().message);
    }
    if (*size >= cfg.memory) {
      return makeError(Errc::InvalidArgument, "--balloon {} is not smaller than --memory", balloon);
    }
    cfg.balloon = *size;
  }
  return CliOutcome(CliRun{cfg, api});
}

}  // namespace ember::vmm
