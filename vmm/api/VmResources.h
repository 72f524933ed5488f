// The microVM's configuration as Firecracker's API builds it before InstanceStart: each resource
// (machine-config, boot-source, drives, network-interfaces, balloon) is parsed from its JSON body
// with Firecracker's field names (its swagger's MachineConfiguration, BootSource, Drive and
// NetworkInterface) and checked field by field; a body that is malformed, has an unknown field,
// a wrong type or an out-of-range value is refused whole, with one message naming the field, and
// leaves the resources as they were. `machineConfig()` turns the whole into the MachineConfig
// `ember run` boots. The same parsers read --config-file (Firecracker's config-file layout).
//
// The JSON library stays in VmResources.cpp: bodies come in as text and go out as text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvm/Result.h"
#include "vmm/MachineConfig.h"

namespace ember::vmm::api {

struct MachineResource {
  uint32_t vcpu_count = 1;
  uint32_t mem_size_mib = 128;  // Firecracker's default
  bool smt = false;
  bool track_dirty_pages = false;
};

struct BootResource {
  std::string kernel_image_path;
  std::string boot_args;
  std::string initrd_path;
};

struct DriveResource {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::string partuuid;
  std::string cache_type = "Unsafe";     // Unsafe or Writeback; ember honours flushes either way
  std::optional<std::string> io_engine;  // Sync or Async; unset: ember's default engine
};

struct NetResource {
  std::string iface_id;
  std::string host_dev_name;
  std::optional<std::array<uint8_t, 6>> guest_mac;
  uint16_t mtu = 0;  // 0: not advertised
};

// Firecracker's Balloon: the target, deflate_on_oom, and the statistics' polling interval.
// amount_mib stays below 2^32 pages of 4 KiB (virtio 1.2 5.5.4: num_pages is a le32); the
// interval is at most a day.
constexpr uint64_t kBalloonMaxMib = (1u << 24) - 1, kBalloonMaxStatsIntervalS = 24 * 3600;
struct BalloonResource {
  uint32_t amount_mib = 0;
  bool deflate_on_oom = false;
  uint32_t stats_polling_interval_s = 0;  // 0: no statistics
};
// Its JSON, as GET /balloon and GET /vm/config give it.
std::string balloonJson(const BalloonResource& b);

class VmResources {
 public:
  // The resources of a VM the command line configured (for GET /machine-config and
  // GET /vm/config): its machine, kernel, disks (drive ids disk0, disk1, ... or their serials)
  // and taps (net0, ...).
  static VmResources describing(const MachineConfig& config);

  // PUT /machine-config (vcpu_count and mem_size_mib required, the rest back to defaults) and
  // PATCH /machine-config (only the fields given change).
  Result<void> putMachineConfig(std::string_view body);
  Result<void> patchMachineConfig(std::string_view body);
  // PUT /boot-source. A `pci=off` in boot_args is removed (ember's devices are on PCI): the
  // returned text, when not empty, is the warning to log.
  Result<std::string> putBootSource(std::string_view body);
  // PUT /drives/{id} and PUT /network-interfaces/{id}: created, or replaced when the id exists.
  Result<void> putDrive(std::string_view id, std::string_view body);
  Result<void> putNetworkInterface(std::string_view id, std::string_view body);
  // PUT /balloon: amount_mib and deflate_on_oom required, stats_polling_interval_s optional.
  // The target is checked against the memory at InstanceStart (machine-config may still change).
  Result<void> putBalloon(std::string_view body);
  // PATCH /drives/{id} once the microVM runs (Firecracker's PartialDrive: drive_id,
  // path_on_host, rate_limiter): the drive's index among the machine's disks (the order
  // machineConfig gives them: the root device first) and the new path, checked as PUT checks
  // it; no path when the body changes nothing. setDrivePath records a path the machine took.
  struct DrivePatch {
    size_t disk_index = 0;
    std::optional<std::string> path_on_host;
  };
  Result<DrivePatch> parseDrivePatch(std::string_view id, std::string_view body) const;
  void setDrivePath(std::string_view id, std::string path);
  // --config-file: the keys "boot-source", "drives", "machine-config", "network-interfaces"
  // "balloon", "metrics" and "logger"; every section as its PUT body.
  Result<std::vector<std::string>> applyConfigFile(std::string_view text);

  // GET /machine-config and GET /vm/config, as JSON text.
  std::string machineConfigJson() const;
  std::string vmConfigJson() const;

  // What InstanceStart boots: BASE (the command line's other options: console, log level, ...)
  // with the kernel, memory, vCPUs, disks (the root device first, as /dev/vda) and taps of the
  // resources. Fails when no boot source was given.
  Result<MachineConfig> machineConfig(const MachineConfig& base) const;
  // PUT /snapshot/load: the machine is the snapshot's instead (machineConfig gives BASE with
  // this restore source); cleared when the load fails.
  void setRestore(std::optional<RestoreSource> source) { restore_ = std::move(source); }

  const MachineResource& machine() const { return machine_; }
  const std::optional<BootResource>& boot() const { return boot_; }
  const std::vector<DriveResource>& drives() const { return drives_; }
  const std::vector<NetResource>& nets() const { return nets_; }
  const std::optional<BalloonResource>& balloon() const { return balloon_; }
  // The config file's "metrics" section, as text, for ApiRouter::configureMetrics (the metrics
  // file is the control plane's, not the VM's).
  const std::optional<std::string>& metricsSection() const { return metrics_section_; }
  // The config file's "logger" section, as text, for ApiRouter::configureLogger.
  const std::optional<std::string>& loggerSection() const { return logger_section_; }

 private:
  // The drives in the machine's disk order: the root device first (the first virtio-blk device
  // the guest probes, /dev/vda), then the others as they were put.
  std::vector<const DriveResource*> diskOrder() const;

  MachineResource machine_;
  std::optional<RestoreSource> restore_;
  std::optional<BootResource> boot_;
  std::vector<DriveResource> drives_;
  std::vector<NetResource> nets_;
  std::optional<BalloonResource> balloon_;
  std::optional<std::string> metrics_section_;
  std::optional<std::string> logger_section_;
};

// The guest's kernel command line: BOOT_ARGS (without pci=off) and, for a root drive,
// `root=/dev/vda ro|rw` or `root=PARTUUID=... ro|rw`, as Firecracker adds them.
std::string bootArgsWithRoot(const std::string& boot_args, const DriveResource* root);

}  // namespace ember::vmm::api
