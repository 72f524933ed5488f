// A vCPU's thread: runs KVM_RUN and dispatches each exit to the PIO/MMIO buses.
//
// Stopping is race-free: stop() sets kvm_run.immediate_exit and signals the thread, so a KVM_RUN
// that is about to start returns at once and one already running returns with EINTR.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "devices/VmControl.h"
#include "kvm/Bus.h"
#include "kvm/Vcpu.h"
#include "vmm/ExitSites.h"

namespace ember::vmm {

using devices::kExitGuestCrash;

// How many exits of each kind (kvm::exitKindName) a vCPU has taken.
using VcpuExitCounts = std::array<uint64_t, kvm::kVcpuExitKinds>;

class VcpuThread {
 public:
  VcpuThread(std::unique_ptr<kvm::Vcpu> vcpu, Bus& pio, Bus& mmio, devices::VmControl& control);
  ~VcpuThread();

  // Installs the (empty) handler of the signal used to kick vCPU threads out of KVM_RUN.
  static void installKickSignal();

  void start();
  void stop();
  // Takes the vCPU out of KVM_RUN and holds it there (the kick that stop() uses), returning once
  // the thread is parked or has ended; resume() lets it run again. From any thread but its own.
  void pause();
  void resume();
  kvm::Vcpu& vcpu() { return *vcpu_; }
  const kvm::Vcpu& vcpu() const { return *vcpu_; }
  // The exits counted so far. The vCPU thread is the only writer, and stores each count
  // atomically (relaxed), so that this may be read while it runs (GET /ember/counters): each
  // count is one the thread reached, the counts together need not be one instant's.
  VcpuExitCounts exitCounts() const;
  // The port and MMIO exits by port and page. Read only once stop() has returned: its join is
  // what makes them visible.
  const ExitSites& exitSites() const { return exit_sites_; }

 private:
  void loop();
  // Parks while a pause is asked for, the last exit's I/O completed first; false when the
  // thread must stop.
  bool parkWhilePaused();
  // One KVM_RUN and its exit handled (counted, served): false when the thread must stop.
  // INTERRUPTED, when given, says whether KVM_RUN returned without an exit (EINTR).
  bool runOnce(bool* interrupted);
  bool handle(kvm::VcpuExit& exit);  // false: stop running
  // `exit_reason` is KVM's name for the exit that ended the vCPU (KVM_EXIT_SHUTDOWN, ...).
  void reportCrash(const std::string& exit_reason, const std::string& what);

  std::unique_ptr<kvm::Vcpu> vcpu_;
  Bus& pio_;
  Bus& mmio_;
  devices::VmControl& control_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> exited_{false};
  std::atomic<bool> pause_requested_{false};
  bool parked_ = false;  // under exit_mutex_
  std::mutex exit_mutex_;
  std::condition_variable exit_cv_;
  std::thread thread_;
  uint64_t unhandled_reported_ = 0;
  // Mutable: exitCounts() reads it through std::atomic_ref, which needs a non-const object.
  mutable VcpuExitCounts exit_counts_{};
  ExitSites exit_sites_;
};

}  // namespace ember::vmm
