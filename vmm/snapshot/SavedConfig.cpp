// The saved machine configuration of a snapshot.
#include "vmm/snapshot/SavedConfig.h"

namespace ember::vmm {

namespace {
constexpr size_t kMaxPath = 4096;
constexpr uint32_t kMaxDevices = 64;
}  // namespace

Result<void> SavedConfig::check(const MachineConfig& config) {
  if (!config.filesystems.empty()) {
    return makeError(Errc::Unsupported,
                     "a VM with a virtio-fs device cannot be snapshotted (its state is "
                     "virtiofsd's, which keeps none for ember to save)");
  }
  if (config.vsock_cid) {
    return makeError(Errc::Unsupported,
                     "a VM with a virtio-vsock device cannot be snapshotted (its connections are "
                     "the kernel's vhost-vsock's)");
  }
  return okResult();
}

void SavedConfig::encode(const MachineConfig& c, StateWriter& w) {
  w.string(c.kernel);
  w.string(c.cmdline);
  w.u64(c.memory);
  w.u32(c.cpus);
  w.u32(static_cast<uint32_t>(c.disks.size()));
  for (const auto& d : c.disks) {
    w.string(d.path);
    w.boolean(d.read_only);
    w.string(d.serial);
    w.boolean(d.ioeventfd);
    w.u8(static_cast<uint8_t>(d.aio));
    w.u16(d.num_queues);
    w.boolean(d.poll);
  }
  w.u8(static_cast<uint8_t>(c.console));
  w.u32(static_cast<uint32_t>(c.serial_ports.size()));
  for (const auto& p : c.serial_ports) {
    w.string(p.name);
    w.u8(static_cast<uint8_t>(p.kind));
    w.string(p.path);
    w.u64(p.limit);
  }
  w.boolean(c.rng);
  w.u32(static_cast<uint32_t>(c.nets.size()));
  for (const auto& n : c.nets) {
    w.string(n.tap);
    w.raw(n.guestMac());  // resolved: a tap override keeps the guest's address
    w.u16(n.mtu);
    w.boolean(n.ioeventfd);
    w.boolean(n.poll);
  }
  w.boolean(c.balloon.has_value());
  w.u64(c.balloon.value_or(0));
  w.boolean(c.balloon_deflate_on_oom);
  w.u32(c.balloon_stats_interval_s);
  w.boolean(c.pvpanic);
  w.boolean(c.poll_us.has_value());
  w.u32(c.poll_us.value_or(0));
}

MachineConfig SavedConfig::decode(StateReader& r) {
  MachineConfig c;
  c.kernel = r.string("kernel", kMaxPath);
  c.cmdline = r.string("command line", 1 << 16);
  c.memory = r.u64("memory");
  c.cpus = r.u32("vCPUs");
  uint32_t disks = r.count("disks", kMaxDevices);
  for (uint32_t i = 0; i < disks && r.ok(); ++i) {
    DiskConfig d;
    d.path = r.string("disk path", kMaxPath);
    d.read_only = r.boolean("disk read-only");
    d.serial = r.string("disk serial", 20);  // 5.2.6: VIRTIO_BLK_ID_BYTES
    d.ioeventfd = r.boolean("disk ioeventfd");
    uint8_t aio = r.u8("disk aio");
    if (r.ok() && aio > static_cast<uint8_t>(devices::BlockEngineKind::Sync)) {
      r.fail("disk aio", fmt::format("{} is no block engine", aio));
    }
    d.aio = static_cast<devices::BlockEngineKind>(aio);
    d.num_queues = r.u16("disk queues");
    d.poll = r.boolean("disk poll");
    c.disks.push_back(std::move(d));
  }
  uint8_t console = r.u8("console");
  if (r.ok() && console > static_cast<uint8_t>(ConsoleKind::Virtio)) {
    r.fail("console", fmt::format("{} is no console kind", console));
  }
  c.console = static_cast<ConsoleKind>(console);
  uint32_t ports = r.count("serial ports", kMaxDevices);
  for (uint32_t i = 0; i < ports && r.ok(); ++i) {
    SerialPortConfig p;
    p.name = r.string("serial port name", 256);
    uint8_t kind = r.u8("serial port kind");
    if (r.ok() && kind > static_cast<uint8_t>(SerialPortConfig::Kind::Socket)) {
      r.fail("serial port kind", fmt::format("{} is no port kind", kind));
    }
    p.kind = static_cast<SerialPortConfig::Kind>(kind);
    p.path = r.string("serial port path", kMaxPath);
    p.limit = r.u64("serial port limit");
    c.serial_ports.push_back(std::move(p));
  }
  c.rng = r.boolean("rng");
  uint32_t nets = r.count("network interfaces", kMaxDevices);
  for (uint32_t i = 0; i < nets && r.ok(); ++i) {
    NetConfig n;
    n.tap = r.string("tap", 16);  // IFNAMSIZ
    auto mac = r.raw(6, "MAC");
    if (r.ok()) {
      std::array<uint8_t, 6> m{};
      std::copy(mac.begin(), mac.end(), m.begin());
      n.mac = m;
    }
    n.mtu = r.u16("MTU");
    n.ioeventfd = r.boolean("net ioeventfd");
    n.poll = r.boolean("net poll");
    c.nets.push_back(std::move(n));
  }
  bool balloon = r.boolean("balloon");
  uint64_t target = r.u64("balloon target");
  if (balloon) c.balloon = target;
  c.balloon_deflate_on_oom = r.boolean("balloon deflate-on-oom");
  c.balloon_stats_interval_s = r.u32("balloon statistics interval");
  c.pvpanic = r.boolean("pvpanic");
  bool poll = r.boolean("poll-us set");
  uint32_t poll_us = r.u32("poll-us");
  if (poll) c.poll_us = poll_us;
  return c;
}

Result<MachineConfig> SavedConfig::merge(const MachineConfig& saved, const MachineConfig& host) {
  MachineConfig c = saved;
  c.kvm_device = host.kvm_device;
  c.log_level = host.log_level;
  c.serial_log = host.serial_log;
  c.serial_log_limit = host.serial_log_limit;
  c.stdin_input = host.stdin_input;
  c.backend_log = host.backend_log;
  c.timeout = host.timeout;
  c.report = host.report;
  c.restore = host.restore;
  if (!host.disks.empty()) {
    if (host.disks.size() != saved.disks.size()) {
      return makeError(Errc::InvalidArgument,
                       "--disk at restore replaces the saved disks' images in order: give all {} "
                       "of them, not {}",
                       saved.disks.size(), host.disks.size());
    }
    for (size_t i = 0; i < saved.disks.size(); ++i) {
      if (host.disks[i].read_only != saved.disks[i].read_only) {
        return makeError(Errc::InvalidArgument,
                         "--disk {}: the saved disk {} was {}; the guest negotiated that, so its "
                         "replacement must be too",
                         host.disks[i].path, i,
                         saved.disks[i].read_only ? "read-only" : "writable");
      }
      c.disks[i].path = host.disks[i].path;
    }
  }
  if (!host.nets.empty()) {
    if (host.nets.size() != saved.nets.size()) {
      return makeError(Errc::InvalidArgument,
                       "--net at restore replaces the saved interfaces' taps in order: give all "
                       "{} of them, not {}",
                       saved.nets.size(), host.nets.size());
    }
    for (size_t i = 0; i < saved.nets.size(); ++i) c.nets[i].tap = host.nets[i].tap;
  }
  return c;
}

}  // namespace ember::vmm
