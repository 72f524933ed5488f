// Parsing of the option values that are small languages of their own: sizes, and the
// comma-separated device specifications of --disk, --net, --serial-port and --fs.
#include "vmm/OptionSpecs.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <vector>

#include "devices/VirtioBlock.h"
#include "devices/VirtioVsock.h"

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
    } else if (key == "poll") {
      if (value != "on" && value != "off") {
        return makeError(Errc::InvalidArgument, "--disk {}: poll must be on or off, not '{}'",
                         disk.path, value);
      }
      disk.poll = value == "on";
    } else if (key == "aio") {
      // QEMU's -drive aio= names (native is libaio there); sync runs the I/O inline.
      if (value == "libaio" || value == "native") {
        disk.aio = devices::BlockEngineKind::LibAio;
      } else if (value == "io_uring") {
        disk.aio = devices::BlockEngineKind::IoUring;
      } else if (value == "sync") {
        disk.aio = devices::BlockEngineKind::Sync;
      } else {
        return makeError(Errc::InvalidArgument,
                         "--disk {}: aio must be libaio, io_uring or sync, not '{}'", disk.path,
                         value);
      }
    } else if (key == "num-queues") {
      // QEMU's virtio-blk property: request queues offered with VIRTIO_BLK_F_MQ.
      unsigned n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || n < 1 ||
          n > devices::VirtioBlock::kMaxQueues) {
        return makeError(Errc::InvalidArgument, "--disk {}: num-queues must be 1 to {}, not '{}'",
                         disk.path, devices::VirtioBlock::kMaxQueues, value);
      }
      disk.num_queues = static_cast<uint16_t>(n);
    } else {
      return makeError(Errc::InvalidArgument,
                       "--disk {}: unknown option '{}' (use readonly, serial=ID, ioeventfd=on|off, "
                       "poll=on|off, aio=libaio|io_uring|sync, num-queues=N)",
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

Result<std::array<uint8_t, 6>> parseMacAddress(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                  &b[5], &tail) != 6) {
    return makeError(Errc::InvalidArgument, "'{}' is not of the form 52:54:00:12:34:56", text);
  }
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  if (mac[0] & 1) {
    return makeError(Errc::InvalidArgument, "'{}' is a multicast address", text);
  }
  return mac;
}

std::string formatMacAddress(const std::array<uint8_t, 6>& mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                     mac[4], mac[5]);
}

Result<NetConfig> parseNetSpec(const std::string& text) {
  NetConfig net;
  for (const auto& field : splitFields(text)) {
    std::string key = field.substr(0, field.find('='));
    std::string value = field.find('=') == std::string::npos ? "" : field.substr(key.size() + 1);
    if (key == "tap") {
      net.tap = value;
    } else if (key == "mac") {
      auto mac = parseMacAddress(value);
      if (!mac) {
        return makeError(Errc::InvalidArgument, "--net: mac {}", mac.error().message);
      }
      net.mac = *mac;
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
    } else if (key == "poll") {
      if (value != "on" && value != "off") {
        return makeError(Errc::InvalidArgument, "--net: poll must be on or off, not '{}'", value);
      }
      net.poll = value == "on";
    } else if (key == "vhost") {
      if (value != "on" && value != "off" && value != "auto") {
        return makeError(Errc::InvalidArgument, "--net: vhost must be on, off or auto, not '{}'",
                         value);
      }
      net.vhost = value == "on"     ? VhostMode::On
                  : value == "auto" ? VhostMode::Auto
                                    : VhostMode::Off;
    } else {
      return makeError(Errc::InvalidArgument,
                       "--net: unknown option '{}' (use tap=NAME, mac=, mtu=, ioeventfd=on|off, "
                       "poll=on|off, vhost=on|off|auto)",
                       field);
    }
  }
  if (net.tap.empty()) {
    return makeError(Errc::InvalidArgument, "--net: tap=NAME is required (e.g. --net tap=tap0)");
  }
  return net;
}

Result<uint64_t> parseVsockSpec(const std::string& text) {
  std::optional<uint64_t> cid;
  for (const auto& field : splitFields(text)) {
    std::string key = field.substr(0, field.find('='));
    std::string value = field.find('=') == std::string::npos ? "" : field.substr(key.size() + 1);
    if (key == "cid") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size()) {
        return makeError(Errc::InvalidArgument, "--vsock: cid '{}' is not a number", value);
      }
      EMBER_TRY(devices::VirtioVsock::checkCid(n));
      cid = n;
    } else if (key == "uds") {
      return makeError(Errc::Unsupported,
                       "--vsock: uds= (Firecracker's hybrid vsock over a unix socket) is not "
                       "supported; the host side is AF_VSOCK to the guest's CID");
    } else {
      return makeError(Errc::InvalidArgument, "--vsock: unknown option '{}' (use cid=N)", field);
    }
  }
  if (!cid) return makeError(Errc::InvalidArgument, "--vsock: cid=N is required (e.g. cid=3)");
  return *cid;
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

Result<ExecShareConfig> parseShareSpec(const std::string& text) {
  ExecShareConfig share;
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? colon : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3 || parts[0].empty()) {
    return makeError(Errc::InvalidArgument,
                     "--share {}: use HOST[:GUEST[:ro]] (a host directory, where the guest sees "
                     "it, and ro to make it read-only)",
                     text);
  }
  share.host = parts[0];
  if (parts.size() >= 2) {
    share.guest = parts[1];
    if (share.guest.empty() || share.guest[0] != '/') {
      return makeError(Errc::InvalidArgument, "--share {}: the guest path {} is not absolute", text,
                       share.guest.empty() ? "\"\"" : share.guest);
    }
  }
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") {
      return makeError(Errc::InvalidArgument, "--share {}: '{}' is neither ro nor rw", text,
                       parts[2]);
    }
    share.readonly = parts[2] == "ro";
  }
  return share;
}

}  // namespace ember::vmm
