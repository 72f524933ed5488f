// Everything `ember run` was asked to do, validated and typed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devices/BlockEngine.h"

namespace ember::vmm {

struct DiskConfig {
  std::string path;
  bool read_only = false;
  std::string serial;
  bool ioeventfd = true;
  devices::BlockEngineKind aio = devices::BlockEngineKind::LibAio;  // aio=
  uint16_t num_queues = 0;  // num-queues= (VIRTIO_BLK_F_MQ); 0: one per vCPU
  bool poll = true;         // the event loop may poll its queue (poll=off: every kick wakes it)
};

// --net ...,vhost=: whether the kernel's vhost-net serves the queues (devices/VhostNet.h).
enum class VhostMode {
  Off,   // ember's own userspace device (the default, as QEMU's)
  On,    // vhost-net, or the run fails with one line
  Auto,  // vhost-net where /dev/vhost-net opens, else the userspace device and one log line
};

struct NetConfig {
  std::string tap;
  std::optional<std::array<uint8_t, 6>> mac;  // default: derived from the tap name
  uint16_t mtu = 0;                           // 0: not advertised
  bool ioeventfd = true;
  bool poll = true;
  VhostMode vhost = VhostMode::Off;

  // The guest's MAC address: `mac`, or one stable per tap name (52:54:00 and a hash of it), so
  // that a guest sees the same address every boot.
  std::array<uint8_t, 6> guestMac() const {
    if (mac) return *mac;
    std::array<uint8_t, 6> out{0x52, 0x54, 0x00, 0, 0, 0};
    uint32_t h = 2166136261u;  // FNV-1a
    for (char c : tap) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
    out[3] = static_cast<uint8_t>(h >> 16);
    out[4] = static_cast<uint8_t>(h >> 8);
    out[5] = static_cast<uint8_t>(h);
    return out;
  }
};

// --restore STATE --mem FILE [--resume] (and PUT /snapshot/load): the machine a snapshot saved,
// started from its files instead of a kernel.
struct RestoreSource {
  std::string state_path;
  std::string mem_path;
  bool resume = false;  // run at once; otherwise the VM starts paused (PATCH /vm resumes it)
};

enum class ConsoleKind { Serial, Virtio };

// --fs DIR[,tag=T][,readonly] (virtiofsd started by ember) or --fs socket=PATH,tag=T (a backend
// someone else started): a virtio-fs device.
struct FsConfig {
  std::string dir;     // the shared directory, for a virtiofsd of ember's own
  std::string socket;  // a running backend's vhost-user socket
  std::string tag;
  bool readonly = false;
  std::string option;  // how the user asked for it, for messages (empty: "--fs DIR")
};

// --serial-port NAME=stdio|file:PATH|socket:PATH: a named virtio-console port.
struct SerialPortConfig {
  enum class Kind { Stdio, Stdout, Stderr, File, Socket };
  std::string name;
  Kind kind = Kind::Stdio;
  std::string path;    // File, Socket
  uint64_t limit = 0;  // File: the most bytes the file takes (0: no limit)
};

struct MachineConfig {
  std::string kernel;
  std::string initrd;
  std::vector<uint8_t> initrd_image;  // the initrd's bytes, used instead of reading `initrd`
  std::string cmdline;
  uint64_t memory = 256ULL << 20;
  uint32_t cpus = 1;
  std::string kvm_device = "/dev/kvm";
  std::string log_level = "info";
  std::vector<DiskConfig> disks;
  ConsoleKind console = ConsoleKind::Serial;
  std::vector<SerialPortConfig> serial_ports;
  std::string serial_log;  // where COM1 writes: empty for stdout, "-" for stderr, else a file
  uint64_t serial_log_limit = 0;  // for a file: the most written to it (0: no limit)
  std::vector<FsConfig> filesystems;
  bool rng = false;
  bool stdin_input = true;  // stdin feeds the console (false: ember never reads stdin)
  // Where the virtiofsd children ember starts write their messages: empty for ember's stderr,
  // else a file (appended to).
  std::string backend_log;
  std::vector<NetConfig> nets;
  std::optional<uint64_t> balloon;  // initial balloon target in bytes
  bool balloon_deflate_on_oom = false;
  // The balloon's statistics asked of the guest every N seconds (0: never; API and config file
  // only, Firecracker's stats_polling_interval_s).
  uint32_t balloon_stats_interval_s = 0;
  bool pvpanic = false;  // a pvpanic-pci device
  // --vsock cid=N: a virtio-vsock device on the kernel's vhost-vsock with that guest CID.
  std::optional<uint64_t> vsock_cid;
  std::optional<double> timeout;  // --timeout: seconds of run time before the VM is stopped
  // --poll-us: how long the event loop polls the queues before it sleeps. Unset: adaptive, up to
  // PollWindow::kDefaultMaxNs; 0: never; N: N microseconds after every event.
  std::optional<uint32_t> poll_us;
  std::string report;  // --report: where the run record goes (empty: nowhere)
  std::optional<RestoreSource> restore;
};

}  // namespace ember::vmm
