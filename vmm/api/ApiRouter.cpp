// Firecracker's endpoints on VmResources and the running machine (see ApiRouter.h).
#include "vmm/api/ApiRouter.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>

#include "kvm/Log.h"

namespace ember::vmm::api {
namespace {

using json = nlohmann::json;

// Every answer's JSON is dumped replacing bytes that are not UTF-8 (a path or target the client
// or the command line gave may hold any byte; nlohmann's dump would throw on them).
ApiResponse fault(std::string message) {
  return ApiResponse{400, json{{"fault_message", std::move(message)}}.dump(
                              -1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

ApiResponse ok(std::string body) {
  return ApiResponse{200, std::move(body)};
}

ApiResponse noContent() {
  return ApiResponse{204, ""};
}

// The path without its query string, split into its first segment and the rest:
// "/drives/rootfs" -> ("drives", "rootfs").
std::pair<std::string_view, std::string_view> route(std::string_view target) {
  target = target.substr(0, target.find('?'));
  if (!target.empty() && target.front() == '/') target.remove_prefix(1);
  size_t slash = target.find('/');
  if (slash == std::string_view::npos) return {target, {}};
  return {target.substr(0, slash), target.substr(slash + 1)};
}

// A body that must be a JSON object holding just FIELD: its value, or the fault naming what is
// wrong (WHAT: the endpoint, as faults name it).
std::variant<json, ApiResponse> onlyField(std::string_view body, std::string_view what,
                                          const std::string& field) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fault(fmt::format("{}: the body is not a JSON object", what));
  }
  for (const auto& [key, value] : j.items()) {
    if (key != field) return fault(fmt::format("{}: unknown field '{}'", what, key));
  }
  auto it = j.find(field);
  if (it == j.end()) return fault(fmt::format("{}: the field '{}' is required", what, field));
  return *it;
}

}  // namespace

const char* instanceStateName(InstanceState state) {
  switch (state) {
    case InstanceState::NotStarted:
      return "Not started";
    case InstanceState::Running:
      return "Running";
    case InstanceState::Paused:
      return "Paused";
  }
  return "?";
}

ApiRouter::ApiRouter(std::string id, VmResources resources)
    : id_(std::move(id)), resources_(std::move(resources)) {}

ApiRouter::~ApiRouter() {
  std::lock_guard lock(logger_mu_);
  if (log_file_) log::setLineSink({}, log::Level::Off, false, "");
}

InstanceState ApiRouter::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

ApiResponse ApiRouter::preBoot(std::string_view what, const Result<void>& result) {
  if (!result) return fault(result.error().message);
  log::debug("api: {} configured", what);
  return noContent();
}

ApiResponse ApiRouter::handle(const ApiRequest& request) {
  // Any Content-Type, or none: the body is JSON whatever the header says. Firecracker's curl
  // examples send `-d` without `-H`, which makes curl label the JSON
  // application/x-www-form-urlencoded.
  const std::string& method = request.method;
  auto [resource, id] = route(request.target);
  std::unique_lock lock(mu_);
  bool configurable = state_ == InstanceState::NotStarted && !start_requested_;

  if (resource.empty() && id.empty()) {
    if (method != "GET") return fault("/ takes GET only");
    return ok(json{
        {"id", id_},
        {"state", instanceStateName(state_)},
        {"vmm_version", EMBER_VERSION},
        {"app_name",
         "ember"}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (resource == "machine-config" && id.empty()) {
    if (method == "GET") return ok(resources_.machineConfigJson());
    if (method != "PUT" && method != "PATCH") {
      return fault("/machine-config takes GET, PUT and PATCH");
    }
    if (!configurable) {
      return fault(
          "machine-config: the microVM has started; the machine configuration can only "
          "change before InstanceStart");
    }
    return preBoot("machine-config", method == "PUT" ? resources_.putMachineConfig(request.body)
                                                     : resources_.patchMachineConfig(request.body));
  }
  if (resource == "boot-source" && id.empty()) {
    if (method != "PUT") return fault("/boot-source takes PUT only");
    if (!configurable) {
      return fault(
          "boot-source: the microVM has started; the boot source can only be set before "
          "InstanceStart");
    }
    auto warning = resources_.putBootSource(request.body);
    if (!warning) return fault(warning.error().message);
    if (!warning->empty()) log::warn("api: {}", *warning);
    return noContent();
  }
  if (resource == "drives") {
    if (id.empty() || id.find('/') != std::string_view::npos) {
      return fault("drives: the path must be /drives/{drive_id}");
    }
    if (method == "PATCH") {
      if (configurable) {
        return fault(
            "drives: PATCH changes a drive of a running microVM; before InstanceStart, "
            "PUT it");
      }
      auto patch = resources_.parseDrivePatch(id, request.body);
      if (!patch) return fault(patch.error().message);
      if (!patch->path_on_host) return noContent();
      lock.unlock();
      // The medium is changed with the router unlocked: draining what is in flight may take a
      // moment, and GET / must still answer meanwhile.
      auto controller = runningController(fmt::format("drives/{}", id));
      if (auto* f = std::get_if<ApiResponse>(&controller)) return *f;
      auto r = std::get<VmController*>(controller)
                   ->replaceDiskMedium(patch->disk_index, *patch->path_on_host);
      if (!r) return fault(fmt::format("drives/{}: {}", id, r.error().message));
      lock.lock();
      resources_.setDrivePath(id, *patch->path_on_host);
      return noContent();
    }
    if (method != "PUT") return fault("/drives/{drive_id} takes PUT and PATCH");
    if (!configurable) {
      return fault(
          "drives: the microVM has started; drives can only be added before "
          "InstanceStart");
    }
    return preBoot("drive", resources_.putDrive(id, request.body));
  }
  if (resource == "network-interfaces") {
    if (id.empty() || id.find('/') != std::string_view::npos) {
      return fault("network-interfaces: the path must be /network-interfaces/{iface_id}");
    }
    if (method != "PUT") return fault("/network-interfaces/{iface_id} takes PUT only");
    if (!configurable) {
      return fault(
          "network-interfaces: the microVM has started; network interfaces can only be "
          "added before InstanceStart");
    }
    return preBoot("network interface", resources_.putNetworkInterface(id, request.body));
  }
  if (resource == "vm" && id.empty()) {
    if (method != "PATCH") return fault("/vm takes PATCH only");
    lock.unlock();
    return vmState(request.body);
  }
  if (resource == "vm" && id == "config") {
    if (method != "GET") return fault("/vm/config takes GET only");
    return ok(resources_.vmConfigJson());
  }
  if (resource == "metrics" && id.empty()) {
    if (method != "PUT") return fault("/metrics takes PUT only");
    lock.unlock();
    if (auto r = configureMetrics(request.body); !r) return fault(r.error().message);
    return noContent();
  }
  if (resource == "logger" && id.empty()) {
    if (method != "PUT") return fault("/logger takes PUT only");
    lock.unlock();
    if (auto r = configureLogger(request.body); !r) return fault(r.error().message);
    return noContent();
  }
  if (resource == "balloon") {
    return balloonEndpoint(lock, method, id, request.body, configurable);
  }
  if (resource == "ember") {
    lock.unlock();
    return emberEndpoint(method, id, request.body);
  }
  if (resource == "snapshot" && (id == "create" || id == "load")) {
    if (method != "PUT") return fault(fmt::format("/snapshot/{} takes PUT only", id));
    lock.unlock();
    return id == "create" ? snapshotCreate(request.body) : snapshotLoad(request.body);
  }
  if (resource == "actions" && id.empty()) {
    if (method != "PUT") return fault("/actions takes PUT only");
    lock.unlock();
    return action(request.body);
  }
  return fault(fmt::format("no endpoint {} {}", method, request.target));
}

Result<void> ApiRouter::configureMetrics(std::string_view body) {
  // Firecracker's Metrics: {"metrics_path": "..."}.
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return makeError(Errc::InvalidArgument, "metrics: the body is not a JSON object");
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "metrics_path") {
      return makeError(Errc::InvalidArgument, "metrics: unknown field '{}'", key);
    }
  }
  auto it = j.find("metrics_path");
  if (it == j.end() || !it->is_string()) {
    return makeError(Errc::InvalidArgument, "metrics: metrics_path (a string) is required");
  }
  const std::string path = it->get<std::string>();
  std::lock_guard lock(metrics_mu_);
  if (metrics_) {
    return makeError(Errc::Busy, "metrics: the metrics file is {} already; it cannot change",
                     metrics_->path());
  }
  metrics_.emplace(EMBER_TRY(LineFile::open(path, "metrics: metrics_path")));
  log::info("api: metrics go to {}", metrics_->path());
  return okResult();
}

Result<void> ApiRouter::configureLogger(std::string_view body) {
  // Firecracker's Logger: log_path, level, show_level, show_log_origin, module (all optional).
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return makeError(Errc::InvalidArgument, "logger: the body is not a JSON object");
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "log_path" || key == "level") {
      if (!value.is_string()) {
        return makeError(Errc::InvalidArgument, "logger: {} must be a string", key);
      }
    } else if (key == "show_level" || key == "show_log_origin") {
      if (!value.is_boolean()) {
        return makeError(Errc::InvalidArgument, "logger: {} must be true or false", key);
      }
    } else if (key == "module") {
      return makeError(Errc::InvalidArgument,
                       "logger: module: ember has no per-module log filter; leave it out");
    } else {
      return makeError(Errc::InvalidArgument, "logger: unknown field '{}'", key);
    }
  }
  if (j.value("show_log_origin", false)) {
    return makeError(Errc::InvalidArgument,
                     "logger: show_log_origin: ember's log lines carry no source location; "
                     "leave it false");
  }
  log::Level level = log::Level::Info;  // Firecracker's default
  if (auto it = j.find("level"); it != j.end()) {
    // Firecracker's names, any case: Error, Warning (or Warn), Info, Debug, Trace, Off.
    std::string name = it->get<std::string>();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "warning") name = "warn";
    if (!log::parseLevel(name, &level)) {
      return makeError(Errc::InvalidArgument,
                       "logger: level '{}' is none of Error, Warning, Info, Debug, Trace, Off",
                       it->get<std::string>());
    }
  }
  std::lock_guard lock(logger_mu_);
  if (logger_configured_) {
    return makeError(Errc::Busy, "logger: the logger is configured already; it cannot change");
  }
  if (auto it = j.find("log_path"); it != j.end()) {
    log_file_.emplace(EMBER_TRY(LineFile::open(it->get<std::string>(), "logger: log_path")));
    // A line the file cannot take (a pipe nobody drains) is dropped: LineFile counts it.
    log::setLineSink([file = &*log_file_](std::string_view line) { (void)file->writeLine(line); },
                     level, j.value("show_level", false), id_);
    log::info("api: the log goes to {} too, at level {}", log_file_->path(),
              j.value("level", std::string("Info")));
  } else if (j.contains("level")) {
    log::setLevel(level);
  }
  logger_configured_ = true;
  return okResult();
}

// One metrics line: the time, the instance state and, while the microVM runs, the run record's
// counters as GET /ember/counters gives them (cumulative since the start, not deltas).
Result<void> ApiRouter::flushMetrics() {
  std::lock_guard metrics_lock(metrics_mu_);
  if (!metrics_) {
    return makeError(Errc::NotFound, "no metrics file is configured (PUT /metrics)");
  }
  auto now = std::chrono::system_clock::now().time_since_epoch();
  json line = {
      {"utc_timestamp_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now).count()},
      {"state", instanceStateName(state())}};
  auto controller = runningController("metrics");
  if (auto* c = std::get_if<VmController*>(&controller)) {
    auto counters = (*c)->counters();
    if (counters) {
      json j = json::parse(*counters, nullptr, /*allow_exceptions=*/false);
      if (j.is_object()) line.update(j);
    }
  }
  return metrics_->writeLine(line.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::variant<VmController*, ApiResponse> ApiRouter::runningController(std::string_view what) {
  std::lock_guard lock(mu_);
  if (controller_ == nullptr) {
    return fault(
        fmt::format("{}: the microVM {}", what, stopped_ ? "has stopped" : "has not started"));
  }
  return controller_;
}

ApiResponse ApiRouter::action(std::string_view body) {
  auto field = onlyField(body, "actions", "action_type");
  if (auto* f = std::get_if<ApiResponse>(&field)) return *f;
  const json& value = std::get<json>(field);
  if (!value.is_string()) return fault("actions: action_type must be a string");
  std::string type = value.get<std::string>();
  if (type == "InstanceStart") return instanceStart();
  if (type == "SendCtrlAltDel") {
    auto controller = runningController("actions: SendCtrlAltDel");
    if (auto* f = std::get_if<ApiResponse>(&controller)) return *f;
    auto r = std::get<VmController*>(controller)->sendCtrlAltDel();
    if (!r) return fault("actions: SendCtrlAltDel: " + r.error().message);
    return noContent();
  }
  if (type == "FlushMetrics") {
    if (auto r = flushMetrics(); !r) return fault("actions: FlushMetrics: " + r.error().message);
    return noContent();
  }
  return fault("actions: action_type must be InstanceStart, SendCtrlAltDel or FlushMetrics (got '" +
               type + "')");
}

// PATCH /vm {"state": "Paused" | "Resumed"}.
ApiResponse ApiRouter::vmState(std::string_view body) {
  auto field = onlyField(body, "vm", "state");
  if (auto* f = std::get_if<ApiResponse>(&field)) return *f;
  const json& value = std::get<json>(field);
  if (!value.is_string() || (value != "Paused" && value != "Resumed")) {
    return fault("vm: state must be \"Paused\" or \"Resumed\" (got " +
                 value.dump(-1, ' ', false, json::error_handler_t::replace) + ")");
  }
  bool pause = value == "Paused";
  std::unique_lock lock(mu_);
  if (controller_ == nullptr) {
    return fault(stopped_ ? "vm: the microVM has stopped" : "vm: the microVM has not started");
  }
  VmController* controller = controller_;
  // Held across the call: two PATCH /vm cannot interleave (the API thread serves one request at
  // a time anyway), and the state the answer reports is the machine's.
  auto r = pause ? controller->pause() : controller->resume();
  if (!r) return fault("vm: " + r.error().message);
  state_ = pause ? InstanceState::Paused : InstanceState::Running;
  log::info("api: the microVM is {}", instanceStateName(state_));
  return noContent();
}

namespace {

// Firecracker's BalloonStats: the target and actual size, and the guest's statistics by their
// virtio 1.2 5.5.6.3 tags (those the guest gave).
std::string balloonStatisticsJson(const BalloonStatus& b) {
  static constexpr std::pair<uint16_t, const char*> kTags[] = {
      {0, "swap_in"},          {1, "swap_out"},    {2, "major_faults"},
      {3, "minor_faults"},     {4, "free_memory"}, {5, "total_memory"},
      {6, "available_memory"}, {7, "disk_caches"}, {8, "hugetlb_allocations"},
      {9, "hugetlb_failures"}};
  json j = {{"target_pages", b.target_pages},
            {"actual_pages", b.actual_pages},
            {"target_mib", b.target_pages >> 8},
            {"actual_mib", b.actual_pages >> 8}};
  for (const auto& [tag, name] : kTags) {
    if (auto it = b.guest_stats.find(tag); it != b.guest_stats.end()) j[name] = it->second;
  }
  return j.dump();
}

}  // namespace

ApiResponse ApiRouter::balloonEndpoint(std::unique_lock<std::mutex>& lock,
                                       const std::string& method, std::string_view path,
                                       std::string_view body, bool configurable) {
  const bool statistics = path == "statistics";
  if (!path.empty() && !statistics) {
    return fault(fmt::format("no endpoint {} /balloon/{}", method, path));
  }
  if (configurable) {
    if (statistics) {
      return fault(
          "balloon/statistics: the microVM has not started; statistics come from a "
          "running guest");
    }
    if (method == "PUT") return preBoot("balloon", resources_.putBalloon(body));
    if (method == "GET") {
      if (!resources_.balloon()) return fault("balloon: no balloon device is configured");
      return ok(balloonJson(*resources_.balloon()));
    }
    if (method == "PATCH") {
      return fault(
          "balloon: PATCH changes the balloon of a running microVM; before "
          "InstanceStart, PUT it");
    }
    return fault("/balloon takes GET, PUT and PATCH");
  }
  if (method == "PUT" && !statistics) {
    return fault(
        "balloon: the microVM has started; the balloon device can only be added "
        "before InstanceStart (PATCH /balloon changes its target)");
  }
  lock.unlock();
  const char* what = statistics ? "balloon/statistics" : "balloon";
  auto controller = runningController(what);
  if (auto* f = std::get_if<ApiResponse>(&controller)) return *f;
  VmController* c = std::get<VmController*>(controller);
  if (method == "GET") {
    auto status = c->balloon();
    if (!status) return fault(fmt::format("{}: {}", what, status.error().message));
    if (!statistics) return ok(balloonJson(status->config));
    if (status->config.stats_polling_interval_s == 0) {
      return fault(
          "balloon/statistics: statistics are not enabled (stats_polling_interval_s "
          "was 0 at boot)");
    }
    return ok(balloonStatisticsJson(*status));
  }
  if (method != "PATCH") {
    return fault(statistics ? "/balloon/statistics takes GET and PATCH"
                            : "/balloon takes GET, PUT and PATCH");
  }
  auto field = onlyField(body, what, statistics ? "stats_polling_interval_s" : "amount_mib");
  if (auto* f = std::get_if<ApiResponse>(&field)) return *f;
  const json& value = std::get<json>(field);
  const uint64_t max = statistics ? kBalloonMaxStatsIntervalS : kBalloonMaxMib;
  if (!value.is_number_unsigned() || value.get<uint64_t>() > max) {
    return fault(fmt::format("{}: {} must be an integer from 0 to {} (got {})", what,
                             statistics ? "stats_polling_interval_s" : "amount_mib", max,
                             value.dump(-1, ' ', false, json::error_handler_t::replace)));
  }
  auto n = static_cast<uint32_t>(value.get<uint64_t>());
  auto r = statistics ? c->setBalloonStatsInterval(n) : c->setBalloonTarget(n);
  if (!r) return fault(fmt::format("{}: {}", what, r.error().message));
  return noContent();
}

// GET /ember/counters; PATCH /ember/devices/{id} {"ioeventfd": true | false}.
ApiResponse ApiRouter::emberEndpoint(const std::string& method, std::string_view path,
                                     std::string_view body) {
  if (path == "counters") {
    if (method != "GET") return fault("/ember/counters takes GET only");
    auto controller = runningController("ember/counters");
    if (auto* f = std::get_if<ApiResponse>(&controller)) return *f;
    auto counters = std::get<VmController*>(controller)->counters();
    if (!counters) return fault("ember/counters: " + counters.error().message);
    return ok(std::move(*counters));
  }
  if (path.starts_with("devices/")) {
    std::string_view id = path.substr(8);
    if (id.empty() || id.find('/') != std::string_view::npos) {
      return fault("ember/devices: the path must be /ember/devices/{id} (blk0, net0, ...)");
    }
    if (method != "PATCH") return fault("/ember/devices/{id} takes PATCH only");
    auto field = onlyField(body, "ember/devices", "ioeventfd");
    if (auto* f = std::get_if<ApiResponse>(&field)) return *f;
    const json& value = std::get<json>(field);
    if (!value.is_boolean()) return fault("ember/devices: ioeventfd must be true or false");
    auto controller = runningController("ember/devices");
    if (auto* f = std::get_if<ApiResponse>(&controller)) return *f;
    if (auto r = std::get<VmController*>(controller)->setIoeventfd(id, value.get<bool>()); !r) {
      return fault("ember/devices: " + r.error().message);
    }
    return noContent();
  }
  return fault(fmt::format("no endpoint {} /ember/{}", method, path));
}

ApiResponse ApiRouter::instanceStart(std::string_view what) {
  std::unique_lock lock(mu_);
  if (state_ != InstanceState::NotStarted || stopped_) {
    return fault(fmt::format("{}: the microVM has started already", what));
  }
  if (start_requested_) return fault(fmt::format("{}: the microVM is starting already", what));
  if (shut_down_) return fault(fmt::format("{}: ember is exiting", what));
  // Checked here, so that a missing boot source is the client's 400 without a hand-over.
  if (auto config = resources_.machineConfig(MachineConfig{}); !config) {
    return fault(config.error().message);
  }
  start_requested_ = true;
  start_answer_.reset();
  cv_.notify_all();
  // The main thread builds the machine; InstanceStart answers once it runs or has failed, as
  // Firecracker's does.
  cv_.wait(lock, [&] { return start_answer_.has_value() || shut_down_; });
  start_requested_ = false;
  if (!start_answer_) return fault(fmt::format("{}: ember is exiting", what));
  std::string answer = std::move(*start_answer_);
  start_answer_.reset();
  if (!answer.empty()) return fault(fmt::format("{}: {}", what, answer));
  return noContent();
}

namespace {
// A string field of a snapshot request's object J: its value, or the fault.
std::variant<std::string, ApiResponse> stringField(const json& j, std::string_view what,
                                                   const char* field, bool required = true) {
  auto it = j.find(field);
  if (it == j.end()) {
    if (!required) return std::string();
    return fault(fmt::format("{}: the field '{}' is required", what, field));
  }
  if (!it->is_string() || it->get<std::string>().empty()) {
    return fault(fmt::format("{}: {} must be a non-empty string", what, field));
  }
  return it->get<std::string>();
}

std::variant<json, ApiResponse> objectBody(std::string_view body, std::string_view what,
                                           std::initializer_list<std::string_view> fields) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fault(fmt::format("{}: the body is not a JSON object", what));
  }
  for (const auto& [key, value] : j.items()) {
    if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
      return fault(fmt::format("{}: unknown field '{}'", what, key));
    }
  }
  return j;
}
}  // namespace

// Firecracker's SnapshotCreateParams: {"snapshot_type": "Full", "snapshot_path",
// "mem_file_path"}.
ApiResponse ApiRouter::snapshotCreate(std::string_view body) {
  constexpr std::string_view what = "snapshot/create";
  auto parsed = objectBody(body, what, {"snapshot_type", "snapshot_path", "mem_file_path"});
  if (auto* f = std::get_if<ApiResponse>(&parsed)) return *f;
  const json& j = std::get<json>(parsed);
  if (auto it = j.find("snapshot_type"); it != j.end() && *it != "Full") {
    return fault(
        fmt::format("{}: snapshot_type must be \"Full\" (ember makes no diff snapshots)", what));
  }
  auto state_path = stringField(j, what, "snapshot_path");
  if (auto* f = std::get_if<ApiResponse>(&state_path)) return *f;
  auto mem_path = stringField(j, what, "mem_file_path");
  if (auto* f = std::get_if<ApiResponse>(&mem_path)) return *f;
  std::unique_lock lock(mu_);
  if (controller_ == nullptr) {
    return fault(
        fmt::format("{}: the microVM {}", what, stopped_ ? "has stopped" : "has not started"));
  }
  if (state_ != InstanceState::Paused) {
    return fault(
        fmt::format("{}: the microVM is running; pause it first (PATCH /vm "
                    "{{\"state\": \"Paused\"}})",
                    what));
  }
  // Under the router's lock, as PATCH /vm: the VM cannot be resumed while it is saved.
  auto r = controller_->createSnapshot(std::get<std::string>(state_path),
                                       std::get<std::string>(mem_path));
  if (!r) return fault(fmt::format("{}: {}", what, r.error().message));
  return noContent();
}

// Firecracker's SnapshotLoadParams: {"snapshot_path", "mem_backend": {"backend_type": "File",
// "backend_path"} (or the older "mem_file_path"), "resume_vm", "enable_diff_snapshots"}.
ApiResponse ApiRouter::snapshotLoad(std::string_view body) {
  constexpr std::string_view what = "snapshot/load";
  auto parsed = objectBody(body, what,
                           {"snapshot_path", "mem_backend", "mem_file_path", "resume_vm",
                            "enable_diff_snapshots", "network_overrides"});
  if (auto* f = std::get_if<ApiResponse>(&parsed)) return *f;
  const json& j = std::get<json>(parsed);
  RestoreSource source;
  auto state_path = stringField(j, what, "snapshot_path");
  if (auto* f = std::get_if<ApiResponse>(&state_path)) return *f;
  source.state_path = std::get<std::string>(state_path);
  auto backend = j.find("mem_backend");
  bool old_form = j.contains("mem_file_path");
  if ((backend != j.end()) == old_form) {
    return fault(
        fmt::format("{}: give the memory file as mem_backend (or the older "
                    "mem_file_path), one of them",
                    what));
  }
  if (old_form) {
    auto mem = stringField(j, what, "mem_file_path");
    if (auto* f = std::get_if<ApiResponse>(&mem)) return *f;
    source.mem_path = std::get<std::string>(mem);
  } else {
    std::string_view mb = "snapshot/load: mem_backend";
    if (!backend->is_object()) return fault(fmt::format("{} must be an object", mb));
    for (const auto& [key, value] : backend->items()) {
      if (key != "backend_type" && key != "backend_path") {
        return fault(fmt::format("{}: unknown field '{}'", mb, key));
      }
    }
    auto type = stringField(*backend, mb, "backend_type");
    if (auto* f = std::get_if<ApiResponse>(&type)) return *f;
    if (std::get<std::string>(type) != "File") {
      return fault(
          fmt::format("{}: backend_type must be \"File\" (ember has no Uffd backend; "
                      "the file is mapped copy-on-write, loaded as the guest touches it)",
                      mb));
    }
    auto path = stringField(*backend, mb, "backend_path");
    if (auto* f = std::get_if<ApiResponse>(&path)) return *f;
    source.mem_path = std::get<std::string>(path);
  }
  if (auto it = j.find("resume_vm"); it != j.end()) {
    if (!it->is_boolean()) return fault(fmt::format("{}: resume_vm must be true or false", what));
    source.resume = it->get<bool>();
  }
  if (auto it = j.find("enable_diff_snapshots"); it != j.end() && *it != false) {
    return fault(
        fmt::format("{}: enable_diff_snapshots must be false (ember makes no diff "
                    "snapshots)",
                    what));
  }
  if (auto it = j.find("network_overrides"); it != j.end() && !(it->is_array() && it->empty())) {
    return fault(
        fmt::format("{}: network_overrides are not supported here; give the taps with "
                    "--net on `ember run --restore`",
                    what));
  }
  {
    std::lock_guard lock(mu_);
    if (state_ != InstanceState::NotStarted || stopped_ || start_requested_) {
      return fault(
          fmt::format("{}: the microVM has started; a snapshot loads only into an ember "
                      "that has not started one",
                      what));
    }
    resources_.setRestore(source);
  }
  ApiResponse answer = instanceStart(what);
  if (answer.status != 204) {
    std::lock_guard lock(mu_);
    resources_.setRestore(std::nullopt);
  }
  return answer;
}

std::optional<VmResources> ApiRouter::waitForStart() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return (start_requested_ && !start_answer_) || shut_down_; });
  if (shut_down_) return std::nullopt;
  return resources_;
}

void ApiRouter::setRunning(VmController* controller, bool paused) {
  std::lock_guard lock(mu_);
  state_ = paused ? InstanceState::Paused : InstanceState::Running;
  controller_ = controller;
  if (start_requested_) start_answer_ = "";
  cv_.notify_all();
}

void ApiRouter::bootFailed(std::string message) {
  std::lock_guard lock(mu_);
  start_answer_ = message.empty() ? std::string("the machine could not be built") : message;
  cv_.notify_all();
}

void ApiRouter::machineStopped() {
  std::lock_guard lock(mu_);
  controller_ = nullptr;
  stopped_ = true;
}

void ApiRouter::shutDown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

}  // namespace ember::vmm::api
