// Firecracker's REST API, request by request: the method and path choose the endpoint, the body
// goes to VmResources, and the answer is Firecracker's: 204, or 200 with a JSON body, or 400 with
// {"fault_message": "..."} naming what was wrong. Pure request-to-response logic, no sockets:
// ApiServer does the HTTP, and the fuzz target and unit tests call `handle` directly.
//
// Threads: `handle` runs on the API thread only. The state it guards with `mu_` (the resources,
// the instance state) is read by the main thread in exactly two places, `waitForStart` (which
// takes the resources InstanceStart handed over) and `setRunning`/`bootFailed` (which answer it);
// a running machine is reached only through the VmController it registers, whose calls hand work
// to the machine's own threads.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "kvm/Result.h"
#include "vmm/api/LineFile.h"
#include "vmm/api/VmResources.h"

namespace ember::vmm::api {

struct ApiRequest {
  std::string method;  // GET, PUT, PATCH, ...
  std::string target;  // /machine-config, /drives/rootfs, ... (a query string is ignored)
  std::string body;    // JSON, whatever the Content-Type header says (ApiRouter.cpp)
};

struct ApiResponse {
  int status = 204;
  std::string body;  // JSON, or empty for 204
};

enum class InstanceState { NotStarted, Running, Paused };
const char* instanceStateName(InstanceState state);  // "Not started", "Running", "Paused"

// The running balloon, for GET /balloon and GET /balloon/statistics.
struct BalloonStatus {
  BalloonResource config;  // amount_mib: the target now
  uint32_t target_pages = 0, actual_pages = 0;
  std::map<uint16_t, uint64_t> guest_stats;  // virtio 1.2 5.5.6.3 tags, as the guest last gave them
};

// What the API asks of a machine that runs. Implemented by the machine's side; every call returns
// once the machine has taken the request (or refused it).
class VmController {
 public:
  virtual ~VmController() = default;
  virtual Result<void> sendCtrlAltDel() = 0;
  virtual Result<void> pause() = 0;
  virtual Result<void> resume() = 0;
  // GET /ember/counters: the run-record counters as they are now, as JSON (formatLiveCounters).
  virtual Result<std::string> counters() = 0;
  // PATCH /ember/devices/{id}: the device's kick path (Machine::setIoeventfd).
  virtual Result<void> setIoeventfd(std::string_view device_id, bool on) = 0;
  // The balloon (Machine::balloonState, setBalloonTarget, setBalloonStatsInterval).
  virtual Result<BalloonStatus> balloon() = 0;
  virtual Result<void> setBalloonTarget(uint32_t mib) = 0;
  virtual Result<void> setBalloonStatsInterval(uint32_t seconds) = 0;
  // PATCH /drives/{id} path_on_host: disk INDEX gets a new medium (Machine::replaceDiskMedium).
  virtual Result<void> replaceDiskMedium(size_t index, const std::string& path) = 0;
  // PUT /snapshot/create: the paused machine's state and memory files (Machine::snapshot); a
  // line saying what was written, for the log.
  virtual Result<std::string> createSnapshot(const std::string& state_path,
                                             const std::string& mem_path) = 0;
};

class ApiRouter {
 public:
  // ID: GET /'s "id" (Firecracker's --id; default "anonymous-instance"). RESOURCES: what the
  // command line or --config-file configured already.
  ApiRouter(std::string id, VmResources resources);
  ~ApiRouter();
  ApiRouter(const ApiRouter&) = delete;
  ApiRouter& operator=(const ApiRouter&) = delete;

  ApiResponse handle(const ApiRequest& request);

  // The main thread, with no kernel on the command line: blocks until a client's InstanceStart
  // hands over the resources to boot, or until `shutDown`. Then `setRunning` or `bootFailed`
  // answers the InstanceStart that is waiting (a failed boot leaves the instance "Not started",
  // and the client may fix the configuration and start again).
  std::optional<VmResources> waitForStart();
  // PAUSED: a snapshot loaded without resume_vm starts paused.
  void setRunning(VmController* controller, bool paused = false);
  void bootFailed(std::string message);
  // The machine has stopped: the controller is gone; requests that need it are refused.
  void machineStopped();
  // Ember is exiting: waitForStart returns nothing, an InstanceStart waiting is refused.
  void shutDown();

  InstanceState state() const;

  // The metrics file (PUT /metrics, or the config file's "metrics"): opened now; refused when
  // one is open already (as Firecracker, it cannot be changed).
  Result<void> configureMetrics(std::string_view body);
  // PUT /logger (or the config file's "logger"): Firecracker's Logger. With log_path, every
  // message at `level` (default Info) or above also goes to that file or pipe, as
  // LineFile writes (never blocking); without it, `level` is stderr's. Set once.
  Result<void> configureLogger(std::string_view body);
  // One line of metrics to the file, if there is one: from FlushMetrics, and from ember's
  // periodic flush (every kMetricsPeriod, ApiRun.cpp).
  Result<void> flushMetrics();
  static constexpr int kMetricsPeriodSeconds = 60;  // Firecracker's

 private:
  // WHAT: the request, as its faults name it.
  ApiResponse instanceStart(std::string_view what = "actions: InstanceStart");
  // PUT /snapshot/create (only while paused) and PUT /snapshot/load (only before a start).
  ApiResponse snapshotCreate(std::string_view body);
  ApiResponse snapshotLoad(std::string_view body);
  ApiResponse action(std::string_view body);
  ApiResponse vmState(std::string_view body);
  // Ember's own endpoints, under /ember/ (README.md, "Ember's API extensions").
  ApiResponse emberEndpoint(const std::string& method, std::string_view path,
                            std::string_view body);
  // /balloon and /balloon/statistics: before InstanceStart on the resources (LOCK held), after
  // it on the controller (LOCK released).
  ApiResponse balloonEndpoint(std::unique_lock<std::mutex>& lock, const std::string& method,
                              std::string_view path, std::string_view body, bool configurable);
  // The running machine's controller, or the fault that says why there is none.
  std::variant<VmController*, ApiResponse> runningController(std::string_view what);
  ApiResponse preBoot(std::string_view what, const Result<void>& result);

  const std::string id_;
  // The metrics file, set once; written under its own lock (the periodic flush runs on a thread
  // of ApiRun's, FlushMetrics on the API thread).
  std::mutex metrics_mu_;
  std::optional<LineFile> metrics_;
  // The logger, set once (under logger_mu_); the log file, written by log::setLineSink's
  // function from any thread that logs, lives as long as the router (the sink is taken away
  // in ~ApiRouter first).
  std::mutex logger_mu_;
  bool logger_configured_ = false;
  std::optional<LineFile> log_file_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  VmResources resources_;
  InstanceState state_ = InstanceState::NotStarted;
  VmController* controller_ = nullptr;
  bool stopped_ = false;    // the machine ran and stopped
  bool shut_down_ = false;  // ember is exiting
  // InstanceStart's hand-over: requested by the API thread, answered by the main thread.
  bool start_requested_ = false;
  std::optional<std::string> start_answer_;  // "" once running, else the boot's error
};

}  // namespace ember::vmm::api
