// The KVM_RUN loop and exit dispatch.
#include "vmm/VcpuThread.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "kvm/Log.h"

namespace ember::vmm {

namespace {
const int kKickSignal = SIGRTMIN + 1;
constexpr uint64_t kMaxUnhandledReports = 16;
}  // namespace

void VcpuThread::installKickSignal() {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};  // only to interrupt KVM_RUN with EINTR
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  ::sigaction(kKickSignal, &sa, nullptr);
}

VcpuThread::VcpuThread(std::unique_ptr<kvm::Vcpu> vcpu, Bus& pio, Bus& mmio,
                       devices::VmControl& control)
    : vcpu_(std::move(vcpu)), pio_(pio), mmio_(mmio), control_(control) {}

VcpuThread::~VcpuThread() {
  stop();
}

void VcpuThread::start() {
  thread_ = std::thread([this] {
    // The kick signal must reach this thread; SIGINT/SIGTERM stay blocked (signalfd handles them).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kKickSignal);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    loop();
    {
      std::lock_guard lock(exit_mutex_);
      exited_.store(true, std::memory_order_release);
    }
    exit_cv_.notify_all();
  });
}

void VcpuThread::stop() {
  stop_.store(true, std::memory_order_seq_cst);
  vcpu_->setImmediateExit(true);
  if (!thread_.joinable()) {
    return;
  }
  {
    std::lock_guard lock(exit_mutex_);  // a parked thread waits on exit_cv_
  }
  exit_cv_.notify_all();
  // Kick until the thread has left its loop: a signal landing just before KVM_RUN is covered by
  // immediate_exit, one landing inside it makes KVM_RUN return EINTR.
  std::unique_lock lock(exit_mutex_);
  while (!exited_.load(std::memory_order_acquire)) {
    pthread_kill(thread_.native_handle(), kKickSignal);
    exit_cv_.wait_for(lock, std::chrono::milliseconds(1),
                      [this] { return exited_.load(std::memory_order_acquire); });
  }
  lock.unlock();
  thread_.join();
}

void VcpuThread::pause() {
  pause_requested_.store(true, std::memory_order_seq_cst);
  vcpu_->setImmediateExit(true);
  if (!thread_.joinable()) return;
  // As stop(): kick until the thread is parked between two KVM_RUNs, or has ended.
  std::unique_lock lock(exit_mutex_);
  while (!parked_ && !exited_.load(std::memory_order_acquire)) {
    pthread_kill(thread_.native_handle(), kKickSignal);
    exit_cv_.wait_for(lock, std::chrono::milliseconds(1),
                      [this] { return parked_ || exited_.load(std::memory_order_acquire); });
  }
}

void VcpuThread::resume() {
  {
    std::lock_guard lock(exit_mutex_);
    pause_requested_.store(false, std::memory_order_seq_cst);
    // Cleared while the thread is parked, before it can enter KVM_RUN again; a stop() meanwhile
    // keeps it set.
    if (!stop_.load(std::memory_order_acquire)) vcpu_->setImmediateExit(false);
  }
  exit_cv_.notify_all();
}

bool VcpuThread::parkWhilePaused() {
  if (!pause_requested_.load(std::memory_order_acquire)) return true;
  // The last exit's I/O or MMIO read is completed inside KVM only on the next KVM_RUN (the KVM
  // API's note on KVM_EXIT_IO and KVM_EXIT_MMIO): KVM_RUN with immediate_exit set (pause() set
  // it) finishes it and returns EINTR without running another guest instruction, so that a
  // paused vCPU's registers are whole for a snapshot. Finishing a string I/O instruction may
  // exit again for its next element: each such exit is served as any other, until EINTR.
  for (bool interrupted = false; !interrupted;) {
    if (!runOnce(&interrupted)) return false;
  }
  std::unique_lock lock(exit_mutex_);
  if (!pause_requested_.load(std::memory_order_acquire)) return true;
  parked_ = true;
  exit_cv_.notify_all();
  exit_cv_.wait(lock, [this] {
    return !pause_requested_.load(std::memory_order_acquire) ||
           stop_.load(std::memory_order_acquire);
  });
  parked_ = false;
  return true;
}

VcpuExitCounts VcpuThread::exitCounts() const {
  VcpuExitCounts out{};
  for (size_t k = 0; k < out.size(); ++k) {
    out[k] = std::atomic_ref(exit_counts_[k]).load(std::memory_order_relaxed);
  }
  return out;
}

void VcpuThread::loop() {
  while (!stop_.load(std::memory_order_acquire)) {
    if (!parkWhilePaused()) return;
    if (stop_.load(std::memory_order_acquire)) return;
    if (!runOnce(nullptr)) return;
  }
}

bool VcpuThread::runOnce(bool* interrupted) {
  auto exit = vcpu_->run();
  if (!exit) {
    reportCrash("KVM_RUN failed", exit.error().message);
    return false;
  }
  if (interrupted != nullptr) {
    *interrupted = std::holds_alternative<kvm::exit::Interrupted>(*exit);
  }
  uint64_t& count = exit_counts_[exit->index()];
  std::atomic_ref(count).store(count + 1, std::memory_order_relaxed);
  return handle(*exit);
}

void VcpuThread::reportCrash(const std::string& exit_reason, const std::string& what) {
  std::string state = vcpu_->describeState();
  log::error("vCPU {}: {}\n{}", vcpu_->id(), what, state);
  devices::ExitRequest::Crash crash{vcpu_->id(), exit_reason, std::nullopt};
  if (auto regs = vcpu_->getRegs()) {
    crash.rip = regs->rip;
  }
  control_.requestExit(devices::ExitRequest::vcpuCrash(
      std::move(crash), fmt::format("vCPU {}: {}", vcpu_->id(), what)));
}

bool VcpuThread::handle(kvm::VcpuExit& exit) {
  using namespace kvm::exit;
  return std::visit(
      [&](auto& e) -> bool {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, IoIn> || std::is_same_v<T, IoOut>) {
          exit_sites_.countPort(e.port);
        } else if constexpr (std::is_same_v<T, MmioRead> || std::is_same_v<T, MmioWrite>) {
          exit_sites_.countMmio(e.addr);
        }
        if constexpr (std::is_same_v<T, IoIn>) {
          for (uint32_t i = 0; i < e.count; ++i) {
            auto chunk = e.data.subspan(static_cast<size_t>(i) * e.size, e.size);
            if (!pio_.read(e.port, chunk)) {
              std::fill(chunk.begin(), chunk.end(), 0xff);  // nothing there: floating bus
              if (unhandled_reported_++ < kMaxUnhandledReports) {
                log::debug("vCPU {}: read of unclaimed port {:#x}/{}", vcpu_->id(), e.port, e.size);
              }
            }
          }
        } else if constexpr (std::is_same_v<T, IoOut>) {
          for (uint32_t i = 0; i < e.count; ++i) {
            auto chunk = e.data.subspan(static_cast<size_t>(i) * e.size, e.size);
            if (!pio_.write(e.port, chunk) && unhandled_reported_++ < kMaxUnhandledReports) {
              log::debug("vCPU {}: write to unclaimed port {:#x}/{}", vcpu_->id(), e.port, e.size);
            }
          }
        } else if constexpr (std::is_same_v<T, MmioRead>) {
          if (!mmio_.read(e.addr, e.data)) {
            std::fill(e.data.begin(), e.data.end(), 0xff);
            if (unhandled_reported_++ < kMaxUnhandledReports) {
              log::debug("vCPU {}: read of unclaimed MMIO {:#x}/{}", vcpu_->id(), e.addr,
                         e.data.size());
            }
          }
        } else if constexpr (std::is_same_v<T, MmioWrite>) {
          if (!mmio_.write(e.addr, e.data) && unhandled_reported_++ < kMaxUnhandledReports) {
            log::debug("vCPU {}: write to unclaimed MMIO {:#x}/{}", vcpu_->id(), e.addr,
                       e.data.size());
          }
        } else if constexpr (std::is_same_v<T, Hlt>) {
          // With the in-kernel LAPIC, HLT waits in the kernel; an exit here just resumes.
        } else if constexpr (std::is_same_v<T, Shutdown>) {
          reportCrash("KVM_EXIT_SHUTDOWN", "the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
          return false;
        } else if constexpr (std::is_same_v<T, InternalError>) {
          std::string data;
          for (auto d : e.data) {
            data += fmt::format(" {:#x}", d);
          }
          reportCrash("KVM_EXIT_INTERNAL_ERROR",
                      fmt::format("KVM internal error, suberror {}{} (data:{})", e.suberror,
                                  e.suberror == KVM_INTERNAL_ERROR_EMULATION
                                      ? " (instruction emulation failed)"
                                      : "",
                                  data));
          return false;
        } else if constexpr (std::is_same_v<T, FailEntry>) {
          reportCrash("KVM_EXIT_FAIL_ENTRY",
                      fmt::format("KVM entry failed, hardware reason {:#x}", e.reason));
          return false;
        } else if constexpr (std::is_same_v<T, SystemEvent>) {
          if (e.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
            control_.requestExit(devices::ExitRequest::powerOff("guest powered off"));
          } else if (e.type == KVM_SYSTEM_EVENT_RESET) {
            control_.requestExit(devices::ExitRequest::reset("guest reset"));
          } else {
            reportCrash("KVM_EXIT_SYSTEM_EVENT",
                        fmt::format("guest crashed (system event {})", e.type));
          }
          return false;
        } else if constexpr (std::is_same_v<T, Interrupted>) {
          // stop() or a stray signal: the loop condition decides.
        } else if constexpr (std::is_same_v<T, Unhandled>) {
          reportCrash(
              kvm::exitReasonName(e.reason),
              fmt::format("unexpected exit {} ({})", kvm::exitReasonName(e.reason), e.reason));
          return false;
        }
        return true;
      },
      exit);
}

}  // namespace ember::vmm
