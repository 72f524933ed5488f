// ember run with --api-sock or --config-file (see ApiRun.h).
#include "vmm/api/ApiRun.h"

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "kvm/Log.h"
#include "vmm/Machine.h"
#include "vmm/api/ApiRouter.h"
#include "vmm/api/ApiServer.h"

namespace ember::vmm::api {
namespace {

sigset_t exitSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// While ember waits for InstanceStart, the exit signals (blocked in every thread: the machine
// reads them from a signalfd once it runs) are taken here; one of them shuts the router down.
// Stopped before the machine is built, so that from then on the machine's signalfd gets them.
class PreBootSignals {
 public:
  explicit PreBootSignals(ApiRouter& router)
      : thread_([this, &router](std::stop_token stop) {
          sigset_t set = exitSignals();
          timespec tick{0, 100'000'000};
          while (!stop.stop_requested()) {
            int sig = ::sigtimedwait(&set, nullptr, &tick);
            if (sig > 0) {
              signal_ = sig;
              router.shutDown();
              return;
            }
          }
        }) {}
  void stop() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  int signal() const { return signal_; }

 private:
  int signal_ = 0;  // written by the thread before it ends, read after stop()
  std::jthread thread_;
};

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return makeError(Errc::NotFound, "--config-file {}: {}", path, std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The API's hold on the running machine: every call under one mutex, so that the machine cannot
// be destroyed while a call is in it (detach() waits for the call to end).
class MachineController : public VmController {
 public:
  explicit MachineController(Machine* machine) : machine_(machine) {}
  void detach() {
    std::lock_guard lock(mu_);
    machine_ = nullptr;
  }
  Result<void> sendCtrlAltDel() override {
    return withMachine([](Machine& m) { return m.sendCtrlAltDel(); });
  }
  Result<void> pause() override {
    return withMachine([](Machine& m) { return m.pause(); });
  }
  Result<void> resume() override {
    return withMachine([](Machine& m) { return m.resume(); });
  }
  Result<std::string> counters() override {
    return withMachine([](Machine& m) -> Result<std::string> {
      return formatLiveCounters(EMBER_TRY(m.liveRecord()));
    });
  }
  Result<void> setIoeventfd(std::string_view device_id, bool on) override {
    return withMachine([&](Machine& m) { return m.setIoeventfd(device_id, on); });
  }
  Result<BalloonStatus> balloon() override {
    return withMachine([](Machine& m) -> Result<BalloonStatus> {
      Machine::BalloonState s = EMBER_TRY(m.balloonState());
      return BalloonStatus{
          BalloonResource{s.target_pages >> 8, s.deflate_on_oom, s.stats_interval_s},
          s.target_pages, s.actual_pages, std::move(s.guest_stats)};
    });
  }
  Result<void> setBalloonTarget(uint32_t mib) override {
    return withMachine([mib](Machine& m) { return m.setBalloonTarget(uint64_t{mib} << 20); });
  }
  Result<void> setBalloonStatsInterval(uint32_t seconds) override {
    return withMachine([seconds](Machine& m) { return m.setBalloonStatsInterval(seconds); });
  }
  Result<void> replaceDiskMedium(size_t index, const std::string& path) override {
    return withMachine([&](Machine& m) { return m.replaceDiskMedium(index, path); });
  }
  Result<std::string> createSnapshot(const std::string& state_path,
                                     const std::string& mem_path) override {
    return withMachine([&](Machine& m) -> Result<std::string> {
      auto i = EMBER_TRY(m.snapshot(state_path, mem_path));
      return fmt::format(
          "snapshot created: {} ({} bytes), {} ({} MiB, {} MiB of it written) "
          "in {:.3f} s",
          state_path, i.state_bytes, mem_path, i.memory_bytes >> 20, i.memory_written >> 20,
          i.seconds);
    });
  }

 private:
  // CALL on the machine under the lock, or the refusal once it has stopped.
  template <typename Call>
  auto withMachine(Call call) -> decltype(call(std::declval<Machine&>())) {
    std::lock_guard lock(mu_);
    if (machine_ == nullptr) return makeError(Errc::Busy, "the microVM has stopped");
    return call(*machine_);
  }

  std::mutex mu_;
  Machine* machine_;
};

// Firecracker's periodic metrics: a line every ApiRouter::kMetricsPeriodSeconds while ember runs
// (the router writes nothing when no metrics file is configured).
class MetricsFlusher {
 public:
  explicit MetricsFlusher(ApiRouter& router)
      : thread_([&router](std::stop_token stop) {
          std::mutex mu;
          std::condition_variable_any cv;
          std::unique_lock lock(mu);
          while (!cv.wait_for(lock, stop, std::chrono::seconds(ApiRouter::kMetricsPeriodSeconds),
                              [] { return false; })) {
            if (stop.stop_requested()) return;
            (void)router.flushMetrics();
          }
        }) {}

 private:
  std::jthread thread_;
};

RunRecord startupError(const std::string& message) {
  std::fprintf(stderr, "ember: error: %s\n", message.c_str());
  RunRecord record;
  record.exit = devices::ExitRequest::startupError(message);
  return record;
}

}  // namespace

RunRecord runWithApi(const MachineConfig& base, const ApiOptions& options) {
  // Blocked before the API thread exists, so that no thread but the one that waits for them
  // (PreBootSignals, then the machine's signalfd) can take an exit signal.
  sigset_t set = exitSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  VmResources resources;
  bool boot_now = false;
  if (!options.config_file.empty()) {
    auto text = readFile(options.config_file);
    if (!text) return startupError(text.error().message);
    auto warnings = resources.applyConfigFile(*text);
    if (!warnings) {
      return startupError(
          fmt::format("--config-file {}: {}", options.config_file, warnings.error().message));
    }
    for (const auto& w : *warnings) log::warn("{}", w);
    boot_now = true;
  } else if (!base.kernel.empty()) {
    resources = VmResources::describing(base);
    boot_now = true;
  } else if (base.restore) {
    boot_now = true;  // the machine is the snapshot's
  }
  ApiRouter router(options.id, resources);
  if (resources.loggerSection()) {
    if (auto r = router.configureLogger(*resources.loggerSection()); !r) {
      return startupError(
          fmt::format("--config-file {}: {}", options.config_file, r.error().message));
    }
  }
  if (resources.metricsSection()) {
    if (auto r = router.configureMetrics(*resources.metricsSection()); !r) {
      return startupError(
          fmt::format("--config-file {}: {}", options.config_file, r.error().message));
    }
  }
  MetricsFlusher flusher(router);
  std::unique_ptr<ApiServer> server;
  auto serve = [&]() -> Result<void> {
    if (options.sock.empty()) return {};
    auto started = ApiServer::start(options.sock, router);
    if (!started) return started.error();
    server = std::move(*started);
    return {};
  };

  std::unique_ptr<Machine> machine;
  std::unique_ptr<MachineController> controller;
  if (boot_now) {
    MachineConfig config = base;
    if (!options.config_file.empty()) {
      auto built = resources.machineConfig(base);
      if (!built) return startupError(built.error().message);
      config = std::move(*built);
    }
    auto created = Machine::create(config);
    if (!created) return startupError(created.error().message);
    machine = std::move(*created);
    // The socket appears only once the machine is built and the router knows its state, so a
    // client that waits for the socket and then sends PATCH /vm (say, to resume a restored
    // machine) never meets "Not started".
    controller = std::make_unique<MachineController>(machine.get());
    router.setRunning(controller.get(), machine->startsPaused());
    if (auto r = serve(); !r) return startupError(r.error().message);
  } else {
    if (auto r = serve(); !r) return startupError(r.error().message);
    log::info(
        "api: waiting for the VM to be configured and started (PUT /actions "
        "InstanceStart on {})",
        options.sock);
    PreBootSignals signals(router);
    while (!machine) {
      auto next = router.waitForStart();
      if (!next) break;
      auto config = next->machineConfig(base);
      if (!config) {
        router.bootFailed(config.error().message);
        continue;
      }
      auto created = Machine::create(*config);
      if (!created) {
        log::error("api: InstanceStart: {}", created.error().message);
        router.bootFailed(created.error().message);
        continue;
      }
      machine = std::move(*created);
    }
    signals.stop();
    if (!machine) {
      RunRecord record;
      record.exit = devices::ExitRequest::fromSignal(signals.signal());
      log::info("{}", record.exit.message);
      return record;
    }
  }
  if (!controller) {
    controller = std::make_unique<MachineController>(machine.get());
    router.setRunning(controller.get(), machine->startsPaused());
  }
  RunRecord record = machine->run();
  router.machineStopped();
  controller->detach();
  machine.reset();
  router.shutDown();
  return record;
}

}  // namespace ember::vmm::api
