// The CLI11 application: options, validation and help text.
#include "vmm/Cli.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <vector>

namespace ember::vmm {

Result<uint64_t> parseMemorySize(const std::string& text) {
  uint64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) {
    return makeError(Errc::InvalidArgument, "'{}' is not a size (use e.g. 512M or 2G)", text);
  }
  std::string suffix(ptr, end);
  for (auto& c : suffix) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (suffix.size() == 2 && suffix[1] == 'B') {
    suffix.pop_back();  // accept "MB", "GB"
  } else if (suffix.size() == 3 && suffix.substr(1) == "IB") {
    suffix.resize(1);  // accept "MiB", "GiB"
  }
  unsigned shift;
  if (suffix.empty() || suffix == "M") {
    shift = 20;
  } else if (suffix == "K") {
    shift = 10;
  } else if (suffix == "G") {
    shift = 30;
  } else if (suffix == "T") {
    shift = 40;
  } else {
    return makeError(Errc::InvalidArgument, "'{}' has an unknown unit (use K, M, G or T)", text);
  }
  if (value > (UINT64_MAX >> shift)) {
    return makeError(Errc::InvalidArgument, "'{}' is too large", text);
  }
  return value << shift;
}

Result<DiskConfig> parseDiskSpec(const std::string& text) {
  DiskConfig disk;
  size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string field =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (first) {
      if (field.empty()) {
        return makeError(Errc::InvalidArgument, "--disk: missing image path in '{}'", text);
      }
      disk.path = field;
      first = false;
      continue;
    }
    std::string key = field.substr(0, field.find('='));
    std::string value = field.find('=') == std::string::npos ? "" : field.substr(key.size() + 1);
    if (key == "readonly" || key == "ro") {
      disk.read_only = value.empty() || value == "on" || value == "true";
    } else if (key == "serial") {
      if (value.size() > 20) {
        return makeError(Errc::InvalidArgument, "--disk {}: serial '{}' is longer than 20 bytes",
                         disk.path, value);
      }
      disk.serial = value;
    } else if (key == "ioeventfd") {
      if (value != "on" && value != "off") {
        return makeError(Errc::InvalidArgument, "--disk {}: ioeventfd must be on or off, not '{}'",
                         disk.path, value);
      }
      disk.ioeventfd = value == "on";
    } else {
      return makeError(Errc::InvalidArgument,
                       "--disk {}: unknown option '{}' (use readonly, serial=ID, ioeventfd=on|off)",
                       disk.path, field);
    }
  }
  return disk;
}

namespace {
std::vector<std::string> splitFields(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    out.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}
}  // namespace

Result<NetConfig> parseNetSpec(const std::string& text) {
  NetConfig net;
  for (const auto& field : splitFields(text)) {
    std::string key = field.substr(0, field.find('='));
    std::string value = field.find('=') == std::string::npos ? "" : field.substr(key.size() + 1);
    if (key == "tap") {
      net.tap = value;
    } else if (key == "mac") {
      std::array<uint8_t, 6> mac{};
      unsigned b[6];
      char tail;
      if (std::sscanf(value.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                      &b[5], &tail) != 6) {
        return makeError(Errc::InvalidArgument,
                         "--net: mac '{}' is not of the form "
                         "52:54:00:12:34:56",
                         value);
      }
      for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
      if (mac[0] & 1) {
        return makeError(Errc::InvalidArgument, "--net: mac '{}' is a multicast address", value);
      }
      net.mac = mac;
    } else if (key == "mtu") {
      unsigned long mtu = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), mtu);
      if (ec != std::errc() || p != value.data() + value.size() || mtu < 68 || mtu > 65535) {
        return makeError(Errc::InvalidArgument, "--net: mtu '{}' is not in 68..65535", value);
      }
      net.mtu = static_cast<uint16_t>(mtu);
    } else if (key == "ioeventfd") {
      if (value != "on" && value != "off") {
        return makeError(Errc::InvalidArgument, "--net: ioeventfd must be on or off, not '{}'",
                         value);
      }
      net.ioeventfd = value == "on";
    } else {
      return makeError(Errc::InvalidArgument,
                       "--net: unknown option '{}' (use tap=NAME, mac=, mtu=, ioeventfd=on|off)",
                       field);
    }
  }
  if (net.tap.empty()) {
    return makeError(Errc::InvalidArgument, "--net: tap=NAME is required (e.g. --net tap=tap0)");
  }
  return net;
}

Result<SerialPortConfig> parseSerialPortSpec(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return makeError(Errc::InvalidArgument,
                     "--serial-port '{}': use NAME=stdio, NAME=file:PATH or NAME=socket:PATH",
                     text);
  }
  SerialPortConfig port;
  port.name = text.substr(0, eq);
  std::string backend = text.substr(eq + 1);
  bool name_ok = !port.name.empty() && port.name.size() <= 64;
  for (char c : port.name) {
    name_ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  }
  if (!name_ok) {
    return makeError(Errc::InvalidArgument,
                     "--serial-port '{}': the name must be 1 to 64 of A-Z a-z 0-9 . _ -", text);
  }
  if (backend == "stdio") {
    port.kind = SerialPortConfig::Kind::Stdio;
  } else if (backend == "stdout") {
    port.kind = SerialPortConfig::Kind::Stdout;
  } else if (backend == "stderr") {
    port.kind = SerialPortConfig::Kind::Stderr;
  } else if (backend.starts_with("file:") && backend.size() > 5) {
    port.kind = SerialPortConfig::Kind::File;
    port.path = backend.substr(5);
  } else if (backend.starts_with("socket:") && backend.size() > 7) {
    port.kind = SerialPortConfig::Kind::Socket;
    port.path = backend.substr(7);
  } else {
    return makeError(
        Errc::InvalidArgument,
        "--serial-port {}: '{}' is not stdio, stdout, stderr, file:PATH or socket:PATH", port.name,
        backend);
  }
  return port;
}

Result<FsConfig> parseFsSpec(const std::string& text, size_t index) {
  FsConfig fs;
  bool first = true;
  for (const auto& field : splitFields(text)) {
    if (field.empty()) continue;
    std::string key = field.substr(0, field.find('='));
    std::string value = field.find('=') == std::string::npos ? "" : field.substr(key.size() + 1);
    if (first && field.find('=') == std::string::npos && !field.empty() && field != "readonly") {
      fs.dir = field;
    } else if (key == "socket" && !value.empty()) {
      fs.socket = value;
    } else if (key == "tag" && !value.empty()) {
      fs.tag = value;
    } else if (field == "readonly" || field == "ro") {
      fs.readonly = true;
    } else {
      return makeError(Errc::InvalidArgument,
                       "--fs {}: unknown option '{}' (use DIR[,tag=T][,readonly] or "
                       "socket=PATH,tag=T)",
                       text, field);
    }
    first = false;
  }
  if (fs.dir.empty() == fs.socket.empty()) {
    return makeError(Errc::InvalidArgument,
                     "--fs {}: give a directory to share or socket=PATH of a running backend",
                     text);
  }
  if (!fs.socket.empty() && fs.tag.empty()) {
    return makeError(Errc::InvalidArgument, "--fs {}: socket=PATH needs tag=T", text);
  }
  if (!fs.socket.empty() && fs.readonly) {
    return makeError(Errc::InvalidArgument,
                     "--fs {}: readonly applies to a directory ember shares; a running backend "
                     "decides that itself",
                     text);
  }
  if (fs.tag.empty()) {
    fs.tag = "fs" + std::to_string(index);
  }
  if (fs.tag.size() > 36) {
    return makeError(Errc::InvalidArgument, "--fs {}: the tag '{}' is longer than 36 bytes", text,
                     fs.tag);
  }
  return fs;
}

Result<CliOutcome> parseCommandLine(int argc, const char* const* argv) {
  CLI::App app{"Ember: a KVM micro-VMM that boots Linux and its own test guest.", "ember"};
  app.set_version_flag("--version", "ember " EMBER_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 when the guest powers off or resets, the guest's value when it writes the "
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
  run->add_option("--kernel", cfg.kernel,
                  "Kernel to boot: a Linux bzImage (boot protocol 2.10 or later, entered at its "
                  "64-bit entry), a PVH ELF (Linux vmlinux, the test guest) or a plain 64-bit ELF")
      ->required()
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
                  "Attach a virtio-blk disk: PATH[,readonly][,serial=ID][,ioeventfd=off] "
                  "(repeatable)")
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
  std::vector<std::string> nets;
  run->add_option("--net", nets,
                  "Attach a virtio-net device on a tap: tap=NAME[,mac=..][,mtu=N][,ioeventfd=off] "
                  "(an existing tap is used; a missing one is created, which needs "
                  "CAP_NET_ADMIN; repeatable)")
      ->take_all()
      ->allow_extra_args(false);
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
    return makeError(Errc::InvalidArgument, "{} (see ember run --help)", what);
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
  return CliOutcome(CliRun{cfg});
}

}  // namespace ember::vmm
