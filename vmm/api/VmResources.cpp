// Firecracker's pre-boot resources, parsed and checked field by field (see VmResources.h).
#include "vmm/api/VmResources.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "kvm/UniqueFd.h"
#include "vmm/OptionSpecs.h"

namespace ember::vmm::api {
namespace {

using json = nlohmann::json;

Result<json> parseObject(std::string_view body, std::string_view what) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return makeError(Errc::InvalidArgument, "{}: the body is not valid JSON", what);
  }
  if (!j.is_object()) {
    return makeError(Errc::InvalidArgument, "{}: the body is not a JSON object", what);
  }
  return j;
}

// One JSON object's fields, each read with its type and range checked; every message names the
// resource and the field.
class Fields {
 public:
  Fields(const json& object, std::string_view what) : o_(object), what_(what) {}

  Result<void> only(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : o_.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return makeError(Errc::InvalidArgument, "{}: unknown field '{}'", what_, key);
      }
    }
    return okResult();
  }
  Result<void> require(std::string_view name) const {
    if (!o_.contains(name)) {
      return makeError(Errc::InvalidArgument, "{}: the field '{}' is required", what_, name);
    }
    return okResult();
  }
  Result<std::optional<bool>> boolean(std::string_view name) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<bool>();
    if (!it->is_boolean()) return wrongType(name, "true or false");
    return std::optional<bool>(it->get<bool>());
  }
  Result<std::optional<std::string>> string(std::string_view name) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<std::string>();
    if (!it->is_string()) return wrongType(name, "a string");
    return std::optional<std::string>(it->get<std::string>());
  }
  Result<std::optional<uint64_t>> integer(std::string_view name, uint64_t min, uint64_t max) const {
    auto it = o_.find(name);
    if (it == o_.end()) return std::optional<uint64_t>();
    if (!it->is_number_integer() ||
        (it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() < 0)) {
      return makeError(Errc::InvalidArgument, "{}: {} must be an integer from {} to {} (got {})",
                       what_, name, min, max, it->dump());
    }
    uint64_t v = it->get<uint64_t>();
    if (v < min || v > max) {
      return makeError(Errc::InvalidArgument, "{}: {} must be from {} to {} (got {})", what_, name,
                       min, max, v);
    }
    return std::optional<uint64_t>(v);
  }
  // A field ember does not offer: refused unless it holds the value that means "none".
  Result<void> onlyValue(std::string_view name, std::string_view none, std::string_view why) const {
    auto value = EMBER_TRY(string(name));
    if (value && *value != none) {
      return makeError(Errc::InvalidArgument, "{}: {} '{}' is not offered: {} (only \"{}\")", what_,
                       name, *value, why, none);
    }
    return okResult();
  }
  Result<void> absent(std::string_view name, std::string_view why) const {
    if (o_.contains(name)) {
      return makeError(Errc::InvalidArgument, "{}: {} is not offered: {}", what_, name, why);
    }
    return okResult();
  }

 private:
  Error wrongType(std::string_view name, std::string_view want) const {
    return makeError(Errc::InvalidArgument, "{}: {} must be {} (got {})", what_, name, want,
                     o_.at(std::string(name)).dump());
  }
  const json& o_;
  std::string what_;
};

// A path the VMM must open at boot: checked when it is given, as Firecracker does, so that the
// PUT fails rather than InstanceStart. Only a regular file or a block device is opened at all: the
// API's client names the path, and opening some device nodes has effects of its own.
Result<void> checkFile(std::string_view what, std::string_view field, const std::string& path,
                       bool write) {
  if (path.empty()) {
    return makeError(Errc::InvalidArgument, "{}: {} is empty", what, field);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return makeError(Errc::InvalidArgument, "{}: {} '{}' cannot be opened: {}", what, field, path,
                     std::strerror(errno));
  }
  if (!(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
    return makeError(Errc::InvalidArgument, "{}: {} '{}' is not a regular file or block device",
                     what, field, path);
  }
  UniqueFd fd(::open(path.c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    return makeError(Errc::InvalidArgument, "{}: {} '{}' cannot be opened{}: {}", what, field, path,
                     write ? " read-write" : "", std::strerror(errno));
  }
  return okResult();
}

// An id in a path (/drives/{id}) and the body's own id field must agree.
Result<void> sameId(std::string_view what, std::string_view field, std::string_view path_id,
                    const std::optional<std::string>& body_id) {
  if (path_id.empty()) {
    return makeError(Errc::InvalidArgument, "{}: the path has no id", what);
  }
  if (!body_id || *body_id != path_id) {
    return makeError(Errc::InvalidArgument,
                     "{}: {} '{}' in the body does not match the path's '{}'", what, field,
                     body_id.value_or(""), path_id);
  }
  return okResult();
}

Result<MachineResource> parseMachine(std::string_view body, bool patch, MachineResource m) {
  constexpr std::string_view what = "machine-config";
  json j = EMBER_TRY(parseObject(body, what));
  Fields f(j, what);
  EMBER_TRY(f.only(
      {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages"}));
  if (!patch) {
    EMBER_TRY(f.require("vcpu_count"));
    EMBER_TRY(f.require("mem_size_mib"));
    m = MachineResource{};
  }
  if (auto v = EMBER_TRY(f.integer("vcpu_count", 1, 254))) m.vcpu_count = static_cast<uint32_t>(*v);
  // Up to 1 TiB: ember's layout places RAM below and above the 32-bit hole.
  if (auto v = EMBER_TRY(f.integer("mem_size_mib", 1, 1u << 20))) {
    m.mem_size_mib = static_cast<uint32_t>(*v);
  }
  if (auto v = EMBER_TRY(f.boolean("smt"))) {
    if (*v) {
      return makeError(Errc::InvalidArgument,
                       "{}: smt is not offered: ember presents every vCPU as a core of its own",
                       what);
    }
    m.smt = false;
  }
  if (auto v = EMBER_TRY(f.boolean("track_dirty_pages"))) {
    if (*v) {
      return makeError(Errc::InvalidArgument,
                       "{}: track_dirty_pages is not offered: ember has no diff snapshots", what);
    }
    m.track_dirty_pages = false;
  }
  EMBER_TRY(f.onlyValue("cpu_template", "None", "ember has no CPU templates"));
  EMBER_TRY(f.onlyValue("huge_pages", "None", "ember backs guest RAM with ordinary pages"));
  return m;
}

// Removes every `pci=off` word (the guest would not see ember's devices, which are all on PCI).
std::string withoutPciOff(const std::string& args, bool* removed) {
  std::string out;
  size_t i = 0;
  while (i < args.size()) {
    size_t start = args.find_first_not_of(' ', i);
    if (start == std::string::npos) break;
    size_t end = args.find(' ', start);
    if (end == std::string::npos) end = args.size();
    std::string_view word(args.data() + start, end - start);
    if (word == "pci=off") {
      *removed = true;
    } else {
      if (!out.empty()) out += ' ';
      out += word;
    }
    i = end;
  }
  return out;
}

Result<DriveResource> parseDrive(std::string_view id, std::string_view body) {
  std::string what = fmt::format("drives/{}", id);
  json j = EMBER_TRY(parseObject(body, what));
  Fields f(j, what);
  EMBER_TRY(f.only({"drive_id", "path_on_host", "is_root_device", "is_read_only", "partuuid",
                    "cache_type", "io_engine", "rate_limiter", "socket"}));
  EMBER_TRY(f.absent("rate_limiter", "ember has no rate limiters"));
  EMBER_TRY(f.absent("socket", "ember has no vhost-user-blk"));
  EMBER_TRY(f.require("is_root_device"));
  EMBER_TRY(f.require("path_on_host"));
  DriveResource d;
  EMBER_TRY(sameId(what, "drive_id", id, EMBER_TRY(f.string("drive_id"))));
  d.drive_id = std::string(id);
  d.path_on_host = *EMBER_TRY(f.string("path_on_host"));
  d.is_root_device = *EMBER_TRY(f.boolean("is_root_device"));
  d.is_read_only = EMBER_TRY(f.boolean("is_read_only")).value_or(false);
  d.partuuid = EMBER_TRY(f.string("partuuid")).value_or("");
  if (!d.partuuid.empty() && !d.is_root_device) {
    return makeError(Errc::InvalidArgument, "{}: partuuid is only for the root device", what);
  }
  if (d.partuuid.find_first_of(" \t\n") != std::string::npos) {
    return makeError(Errc::InvalidArgument, "{}: partuuid '{}' has white space", what, d.partuuid);
  }
  d.cache_type = EMBER_TRY(f.string("cache_type")).value_or("Unsafe");
  if (d.cache_type != "Unsafe" && d.cache_type != "Writeback") {
    return makeError(Errc::InvalidArgument,
                     "{}: cache_type must be \"Unsafe\" or \"Writeback\" (got \"{}\")", what,
                     d.cache_type);
  }
  d.io_engine = EMBER_TRY(f.string("io_engine"));
  if (d.io_engine && *d.io_engine != "Sync" && *d.io_engine != "Async") {
    return makeError(Errc::InvalidArgument,
                     "{}: io_engine must be \"Sync\" or \"Async\" (got \"{}\")", what,
                     *d.io_engine);
  }
  EMBER_TRY(checkFile(what, "path_on_host", d.path_on_host, !d.is_read_only));
  return d;
}

Result<NetResource> parseNet(std::string_view id, std::string_view body) {
  std::string what = fmt::format("network-interfaces/{}", id);
  json j = EMBER_TRY(parseObject(body, what));
  Fields f(j, what);
  EMBER_TRY(f.only(
      {"iface_id", "host_dev_name", "guest_mac", "mtu", "rx_rate_limiter", "tx_rate_limiter"}));
  EMBER_TRY(f.absent("rx_rate_limiter", "ember has no rate limiters"));
  EMBER_TRY(f.absent("tx_rate_limiter", "ember has no rate limiters"));
  EMBER_TRY(f.require("host_dev_name"));
  NetResource n;
  EMBER_TRY(sameId(what, "iface_id", id, EMBER_TRY(f.string("iface_id"))));
  n.iface_id = std::string(id);
  n.host_dev_name = *EMBER_TRY(f.string("host_dev_name"));
  // IFNAMSIZ - 1 bytes, as the kernel takes a tap's name.
  if (n.host_dev_name.empty() || n.host_dev_name.size() > 15 ||
      n.host_dev_name.find_first_of("/ \t\n") != std::string::npos) {
    return makeError(Errc::InvalidArgument,
                     "{}: host_dev_name '{}' is not an interface name (1 to 15 bytes, no '/' or "
                     "white space)",
                     what, n.host_dev_name);
  }
  if (auto mac = EMBER_TRY(f.string("guest_mac"))) {
    auto parsed = parseMacAddress(*mac);
    if (!parsed) {
      return makeError(Errc::InvalidArgument, "{}: guest_mac {}", what, parsed.error().message);
    }
    n.guest_mac = *parsed;
  }
  if (auto mtu = EMBER_TRY(f.integer("mtu", 68, 65535))) n.mtu = static_cast<uint16_t>(*mtu);
  return n;
}

json driveJson(const DriveResource& d) {
  json j = {{"drive_id", d.drive_id},
            {"path_on_host", d.path_on_host},
            {"is_root_device", d.is_root_device},
            {"is_read_only", d.is_read_only},
            {"cache_type", d.cache_type}};
  if (!d.partuuid.empty()) j["partuuid"] = d.partuuid;
  if (d.io_engine) j["io_engine"] = *d.io_engine;
  return j;
}

json netJson(const NetResource& n) {
  json j = {{"iface_id", n.iface_id}, {"host_dev_name", n.host_dev_name}};
  if (n.guest_mac) j["guest_mac"] = formatMacAddress(*n.guest_mac);
  if (n.mtu) j["mtu"] = n.mtu;
  return j;
}

Result<BalloonResource> parseBalloon(std::string_view body) {
  constexpr std::string_view what = "balloon";
  json j = EMBER_TRY(parseObject(body, what));
  Fields f(j, what);
  EMBER_TRY(f.only({"amount_mib", "deflate_on_oom", "stats_polling_interval_s"}));
  EMBER_TRY(f.require("amount_mib"));
  EMBER_TRY(f.require("deflate_on_oom"));
  BalloonResource b;
  b.amount_mib = static_cast<uint32_t>(*EMBER_TRY(f.integer("amount_mib", 0, kBalloonMaxMib)));
  b.deflate_on_oom = *EMBER_TRY(f.boolean("deflate_on_oom"));
  b.stats_polling_interval_s = static_cast<uint32_t>(
      EMBER_TRY(f.integer("stats_polling_interval_s", 0, kBalloonMaxStatsIntervalS)).value_or(0));
  return b;
}

json machineJson(const MachineResource& m) {
  return {{"vcpu_count", m.vcpu_count},
          {"mem_size_mib", m.mem_size_mib},
          {"smt", m.smt},
          {"track_dirty_pages", m.track_dirty_pages},
          {"huge_pages", "None"}};
}

template <typename T>
void putById(std::vector<T>& list, T item, std::string T::*id) {
  for (auto& existing : list) {
    if (existing.*id == item.*id) {
      existing = std::move(item);
      return;
    }
  }
  list.push_back(std::move(item));
}

}  // namespace

std::string balloonJson(const BalloonResource& b) {
  return json{{"amount_mib", b.amount_mib},
              {"deflate_on_oom", b.deflate_on_oom},
              {"stats_polling_interval_s", b.stats_polling_interval_s}}
      .dump();
}

VmResources VmResources::describing(const MachineConfig& config) {
  VmResources r;
  r.machine_.vcpu_count = config.cpus;
  r.machine_.mem_size_mib = static_cast<uint32_t>(config.memory >> 20);
  if (!config.kernel.empty()) {
    r.boot_ = BootResource{config.kernel, config.cmdline, config.initrd};
  }
  for (size_t i = 0; i < config.disks.size(); ++i) {
    const DiskConfig& d = config.disks[i];
    DriveResource drive;
    drive.drive_id = d.serial.empty() ? fmt::format("disk{}", i) : d.serial;
    drive.path_on_host = d.path;
    drive.is_read_only = d.read_only;
    drive.io_engine = d.aio == devices::BlockEngineKind::Sync ? "Sync" : "Async";
    r.drives_.push_back(std::move(drive));
  }
  for (size_t i = 0; i < config.nets.size(); ++i) {
    const NetConfig& n = config.nets[i];
    r.nets_.push_back(NetResource{fmt::format("net{}", i), n.tap, n.mac, n.mtu});
  }
  if (config.balloon) {
    r.balloon_ = BalloonResource{static_cast<uint32_t>(*config.balloon >> 20),
                                 config.balloon_deflate_on_oom, config.balloon_stats_interval_s};
  }
  return r;
}

Result<void> VmResources::putMachineConfig(std::string_view body) {
  machine_ = EMBER_TRY(parseMachine(body, false, machine_));
  return okResult();
}

Result<void> VmResources::patchMachineConfig(std::string_view body) {
  machine_ = EMBER_TRY(parseMachine(body, true, machine_));
  return okResult();
}

Result<std::string> VmResources::putBootSource(std::string_view body) {
  constexpr std::string_view what = "boot-source";
  json j = EMBER_TRY(parseObject(body, what));
  Fields f(j, what);
  EMBER_TRY(f.only({"kernel_image_path", "boot_args", "initrd_path"}));
  EMBER_TRY(f.require("kernel_image_path"));
  BootResource b;
  b.kernel_image_path = *EMBER_TRY(f.string("kernel_image_path"));
  EMBER_TRY(checkFile(what, "kernel_image_path", b.kernel_image_path, false));
  if (auto initrd = EMBER_TRY(f.string("initrd_path"))) {
    b.initrd_path = *initrd;
    EMBER_TRY(checkFile(what, "initrd_path", b.initrd_path, false));
  }
  bool removed = false;
  b.boot_args = withoutPciOff(EMBER_TRY(f.string("boot_args")).value_or(""), &removed);
  boot_ = std::move(b);
  return removed ? std::string(
                       "boot-source: removed pci=off from boot_args: ember's devices "
                       "are on PCI, which the guest must probe")
                 : std::string();
}

Result<void> VmResources::putDrive(std::string_view id, std::string_view body) {
  DriveResource d = EMBER_TRY(parseDrive(id, body));
  if (d.is_root_device) {
    for (const auto& other : drives_) {
      if (other.is_root_device && other.drive_id != d.drive_id) {
        return makeError(Errc::InvalidArgument,
                         "drives/{}: is_root_device: the drive '{}' is the root device already", id,
                         other.drive_id);
      }
    }
  }
  putById(drives_, std::move(d), &DriveResource::drive_id);
  return okResult();
}

Result<void> VmResources::putNetworkInterface(std::string_view id, std::string_view body) {
  NetResource n = EMBER_TRY(parseNet(id, body));
  for (const auto& other : nets_) {
    if (other.iface_id != n.iface_id && other.host_dev_name == n.host_dev_name) {
      return makeError(Errc::InvalidArgument,
                       "network-interfaces/{}: host_dev_name '{}' is the interface '{}' already",
                       id, n.host_dev_name, other.iface_id);
    }
    if (other.iface_id != n.iface_id && n.guest_mac && other.guest_mac == n.guest_mac) {
      return makeError(Errc::InvalidArgument,
                       "network-interfaces/{}: guest_mac is the interface '{}' already", id,
                       other.iface_id);
    }
  }
  putById(nets_, std::move(n), &NetResource::iface_id);
  return okResult();
}

Result<void> VmResources::putBalloon(std::string_view body) {
  balloon_ = EMBER_TRY(parseBalloon(body));
  return okResult();
}

Result<std::vector<std::string>> VmResources::applyConfigFile(std::string_view text) {
  json j = EMBER_TRY(parseObject(text, "--config-file"));
  Fields f(j, "--config-file");
  EMBER_TRY(f.only({"boot-source", "drives", "machine-config", "network-interfaces", "balloon",
                    "metrics", "logger"}));
  // Applied to a copy: a file with one bad section changes nothing.
  VmResources next = *this;
  std::vector<std::string> warnings;
  if (auto it = j.find("machine-config"); it != j.end()) {
    EMBER_TRY(next.putMachineConfig(it->dump()));
  }
  if (auto it = j.find("balloon"); it != j.end()) {
    EMBER_TRY(next.putBalloon(it->dump()));
  }
  if (auto it = j.find("metrics"); it != j.end()) next.metrics_section_ = it->dump();
  if (auto it = j.find("logger"); it != j.end()) next.logger_section_ = it->dump();
  if (auto it = j.find("boot-source"); it != j.end()) {
    std::string warning = EMBER_TRY(next.putBootSource(it->dump()));
    if (!warning.empty()) warnings.push_back(std::move(warning));
  }
  for (const char* list : {"drives", "network-interfaces"}) {
    auto it = j.find(list);
    if (it == j.end()) continue;
    if (!it->is_array()) {
      return makeError(Errc::InvalidArgument, "--config-file: \"{}\" must be an array", list);
    }
    bool drives = std::string_view(list) == "drives";
    const char* id_field = drives ? "drive_id" : "iface_id";
    for (const auto& item : *it) {
      if (!item.is_object() || !item.contains(id_field) || !item[id_field].is_string()) {
        return makeError(Errc::InvalidArgument,
                         "--config-file: every entry of \"{}\" must be an object with a string {}",
                         list, id_field);
      }
      std::string id = item[id_field].get<std::string>();
      if (drives) {
        EMBER_TRY(next.putDrive(id, item.dump()));
      } else {
        EMBER_TRY(next.putNetworkInterface(id, item.dump()));
      }
    }
  }
  *this = std::move(next);
  return warnings;
}

std::string VmResources::machineConfigJson() const {
  return machineJson(machine_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string VmResources::vmConfigJson() const {
  json j = {{"machine-config", machineJson(machine_)},
            {"drives", json::array()},
            {"network-interfaces", json::array()}};
  if (boot_) {
    json b = {{"kernel_image_path", boot_->kernel_image_path}, {"boot_args", boot_->boot_args}};
    if (!boot_->initrd_path.empty()) b["initrd_path"] = boot_->initrd_path;
    j["boot-source"] = b;
  }
  for (const auto& d : drives_) j["drives"].push_back(driveJson(d));
  for (const auto& n : nets_) j["network-interfaces"].push_back(netJson(n));
  if (balloon_) j["balloon"] = json::parse(balloonJson(*balloon_));
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string bootArgsWithRoot(const std::string& boot_args, const DriveResource* root) {
  bool removed = false;
  std::string args = withoutPciOff(boot_args, &removed);
  if (root != nullptr) {
    std::string device = root->partuuid.empty() ? "/dev/vda" : "PARTUUID=" + root->partuuid;
    args += fmt::format("{}root={} {}", args.empty() ? "" : " ", device,
                        root->is_read_only ? "ro" : "rw");
  }
  return args;
}

std::vector<const DriveResource*> VmResources::diskOrder() const {
  const DriveResource* root = nullptr;
  for (const auto& d : drives_) {
    if (d.is_root_device) root = &d;
  }
  std::vector<const DriveResource*> order;
  if (root != nullptr) order.push_back(root);
  for (const auto& d : drives_) {
    if (&d != root) order.push_back(&d);
  }
  return order;
}

Result<VmResources::DrivePatch> VmResources::parseDrivePatch(std::string_view id,
                                                             std::string_view body) const {
  std::string what = fmt::format("drives/{}", id);
  json j = EMBER_TRY(parseObject(body, what));
  Fields f(j, what);
  EMBER_TRY(f.only({"drive_id", "path_on_host", "rate_limiter"}));
  EMBER_TRY(f.absent("rate_limiter", "ember has no rate limiters"));
  EMBER_TRY(sameId(what, "drive_id", id, EMBER_TRY(f.string("drive_id"))));
  auto order = diskOrder();
  auto it = std::find_if(order.begin(), order.end(),
                         [&](const DriveResource* d) { return d->drive_id == id; });
  if (it == order.end()) {
    return makeError(Errc::NotFound, "{}: there is no drive '{}'", what, id);
  }
  DrivePatch patch;
  patch.disk_index = static_cast<size_t>(it - order.begin());
  patch.path_on_host = EMBER_TRY(f.string("path_on_host"));
  if (patch.path_on_host) {
    EMBER_TRY(checkFile(what, "path_on_host", *patch.path_on_host, !(*it)->is_read_only));
  }
  return patch;
}

void VmResources::setDrivePath(std::string_view id, std::string path) {
  for (auto& d : drives_) {
    if (d.drive_id == id) d.path_on_host = std::move(path);
  }
}

Result<MachineConfig> VmResources::machineConfig(const MachineConfig& base) const {
  if (restore_) {
    MachineConfig c = base;
    c.restore = restore_;
    return c;
  }
  if (!boot_) {
    return makeError(
        Errc::InvalidArgument,
        "InstanceStart: no boot source: PUT /boot-source with kernel_image_path first");
  }
  MachineConfig c = base;
  c.kernel = boot_->kernel_image_path;
  c.initrd = boot_->initrd_path;
  c.cpus = machine_.vcpu_count;
  c.memory = uint64_t{machine_.mem_size_mib} << 20;
  c.disks.clear();
  auto order = diskOrder();
  const DriveResource* root =
      !order.empty() && order.front()->is_root_device ? order.front() : nullptr;
  for (const DriveResource* d : order) {
    DiskConfig disk;
    disk.path = d->path_on_host;
    disk.read_only = d->is_read_only;
    // The drive's id is its serial (VIRTIO_BLK_T_GET_ID, virtio 1.2 5.2.6): 20 bytes at most.
    disk.serial = d->drive_id.substr(0, 20);
    if (d->io_engine) {
      disk.aio = *d->io_engine == "Sync" ? devices::BlockEngineKind::Sync
                                         : devices::BlockEngineKind::IoUring;
    }
    c.disks.push_back(std::move(disk));
  }
  c.nets.clear();
  for (const auto& n : nets_) {
    NetConfig net;
    net.tap = n.host_dev_name;
    net.mac = n.guest_mac;
    net.mtu = n.mtu;
    c.nets.push_back(std::move(net));
  }
  c.cmdline = bootArgsWithRoot(boot_->boot_args, root);
  if (balloon_) {
    if (balloon_->amount_mib >= machine_.mem_size_mib) {
      return makeError(Errc::InvalidArgument,
                       "balloon: amount_mib {} must be below machine-config's mem_size_mib {}",
                       balloon_->amount_mib, machine_.mem_size_mib);
    }
    c.balloon = uint64_t{balloon_->amount_mib} << 20;
    c.balloon_deflate_on_oom = balloon_->deflate_on_oom;
    c.balloon_stats_interval_s = balloon_->stats_polling_interval_s;
  }
  return c;
}

}  // namespace ember::vmm::api
