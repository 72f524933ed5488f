// The whole virtual machine: built from a MachineConfig, run to its exit decision.
//
// Construction order is the dependency order (KVM system, VM and irqchip, memory, kernel and boot
// data, devices on the buses, vCPUs); destruction runs in reverse, so every thread is stopped
// before the objects it uses go away.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "devices/AcpiPm.h"
#include "devices/CmosRtc.h"
#include "devices/DebugExit.h"
#include "devices/I8042.h"
#include "devices/Uart8250.h"
#include "devices/VirtioBalloon.h"
#include "devices/VirtioBlock.h"
#include "devices/VirtioConsole.h"
#include "devices/VirtiofsdProcess.h"
#include "kvm/Bus.h"
#include "kvm/EventLoop.h"
#include "kvm/GuestMemory.h"
#include "kvm/KvmSystem.h"
#include "kvm/Vm.h"
#include "pci/PciBus.h"
#include "virtio/VirtioDevice.h"
#include "virtio/VirtioPciTransport.h"
#include "vmm/ExitLatch.h"
#include "vmm/HostConsoles.h"
#include "vmm/MachineConfig.h"
#include "vmm/MemoryLayout.h"
#include "vmm/RunRecord.h"
#include "vmm/VcpuThread.h"
#include "vmm/snapshot/StateFile.h"

namespace ember::vmm {

class Machine {
 public:
  static Result<std::unique_ptr<Machine>> create(const MachineConfig& config);
  ~Machine();

  // Runs until the guest or a signal decides, stops everything, and returns what happened (its
  // exit.status is ember's exit status).
  RunRecord run();
  ExitLatch& exitLatch() { return exit_; }
  // PATCH /vm: the vCPUs out of KVM_RUN and no queue served (the ioeventfds stay registered, so
  // kicks made meanwhile are served on resume), every writable disk synced before pause()
  // returns; a signal or --timeout still ends a paused VM. From a thread other than the
  // machine's own, while run() runs.
  Result<void> pause();
  Result<void> resume();
  // GET /ember/counters: the record's counters as they are now (the vCPUs' exits by kind, every
  // device's, the loop's), without an exit and without exit sites. From another thread while
  // run() runs; refused once it is stopping.
  Result<RunRecord> liveRecord();
  // PATCH /ember/devices/{id} {"ioeventfd": ON}: the device's kick path switched while it runs
  // (VirtioPciTransport::setIoeventfd). Refused while paused: delivering a kick an eventfd held
  // would serve a queue.
  Result<void> setIoeventfd(std::string_view device_id, bool on);

  // PUT /actions SendCtrlAltDel: Ctrl-Alt-Del typed on the i8042 keyboard (refused while the
  // guest has not enabled it). The same thread rule as liveRecord().
  Result<void> sendCtrlAltDel();

  // The balloon (GET /balloon, /balloon/statistics): its target and the guest's `actual`, in
  // pages, its options, and the guest's last statistics (virtio 1.2 5.5.6.3 tags).
  struct BalloonState {
    uint32_t target_pages = 0, actual_pages = 0;
    bool deflate_on_oom = false;
    uint32_t stats_interval_s = 0;
    std::map<uint16_t, uint64_t> guest_stats;
  };
  // Refused without a balloon device; the same thread rule as liveRecord().
  Result<BalloonState> balloonState();
  // PATCH /balloon: a new target (below the guest's memory), announced by a configuration
  // interrupt.
  Result<void> setBalloonTarget(uint64_t bytes);
  // PATCH /balloon/statistics: the polling interval, when statistics were enabled at boot.
  Result<void> setBalloonStatsInterval(uint32_t seconds);

  // PATCH /drives/{id} path_on_host: disk INDEX (the order of the config's disks) gets the image at
  // PATH, opened as the disk was (read-only or not); VirtioBlock::replaceMedium drains and
  // announces. Refused while paused (draining completes requests, which a paused VM does not see).
  Result<void> replaceDiskMedium(size_t index, const std::string& path);

  // PUT /snapshot/create (issue 13), only while paused: the memory file first (all of RAM), then
  // the state file (vmm/Snapshot.cpp lists its sections), each written whole or not at all and
  // synced, so a state file on disk always has its memory file. Devices complete what they have
  // in flight first. The VM stays paused; it may be resumed or stopped afterwards. The same
  // thread rule as liveRecord().
  struct SnapshotInfo {
    double seconds = 0;           // from the request to both files synced
    uint64_t state_bytes = 0;     // the state file's size
    uint64_t memory_bytes = 0;    // the memory file's length
    uint64_t memory_written = 0;  // of which written (the rest are holes of zero pages)
  };
  Result<SnapshotInfo> snapshot(const std::string& state_path, const std::string& mem_path);
  // A restore without resume: run() starts with every vCPU and the loop paused.
  bool startsPaused() const { return start_paused_; }

 private:
  explicit Machine(const MachineConfig& config) : config_(config) {}
  // config_.restore: the state file read and checked, and the machine to build from it (its
  // saved configuration merged with CONFIG's host settings and overrides).
  static Result<MachineConfig> restoredConfig(const MachineConfig& config,
                                              std::optional<StateFile>& state);
  // RAM mapped from the memory file the state file names (checked against it and REGIONS).
  Result<GuestMemory> restoredMemory(const StateFile& state,
                                     std::span<const GuestRegionSpec> regions) const;
  // After every device is built: the saved state put back, before any vCPU runs.
  // STARTED: when create() began, for the log line that says how long the restore took.
  Result<void> restoreState(const StateFile& state, std::chrono::steady_clock::time_point started);
  Result<void> setUpMemory(const StateFile* state);
  Result<void> loadKernel();
  Result<void> setUpLegacyDevices();
  Result<void> setUpPci();
  Result<void> addFileSystem(const FsConfig& fs);
  Result<void> addVirtioDevice(std::unique_ptr<virtio::VirtioDevice> device,
                               const virtio::TransportOptions& options);
  Result<void> setUpVcpus(bool boot);
  Result<void> setUpSignals();
  Result<void> startTimeout();
  Result<void> startBalloonStats();
  Result<void> armBalloonStats(uint32_t seconds);
  // Waits for run() to have started; an error once it is stopping (with pause_mutex_ held).
  Result<void> waitRunning(std::unique_lock<std::mutex>& lock);
  // waitRunning, and an error without a balloon device.
  Result<void> waitBalloon(std::unique_lock<std::mutex>& lock);
  std::vector<DeviceRecord> deviceRecords() const;

  MachineConfig config_;
  ExitLatch exit_;
  std::optional<kvm::KvmSystem> kvm_;
  std::unique_ptr<kvm::Vm> vm_;
  // Before pio_: the RTC on that bus raises this line from a thread of its own, which stops when
  // the bus releases the device, so the line must outlive the bus.
  std::unique_ptr<kvm::KvmIrqLine> rtc_irq_;
  // Before pio_ too: the i8042 on it raises IRQ 1 (from a vCPU thread, or the API's
  // SendCtrlAltDel), so the line outlives the bus.
  std::unique_ptr<kvm::KvmIrqLine> kbd_irq_;
  std::shared_ptr<devices::I8042> i8042_;
  std::shared_ptr<devices::CmosRtc> cmos_;
  std::shared_ptr<devices::AcpiPm> acpi_pm_;
  std::optional<MemoryLayout> layout_;
  GuestMemory memory_;
  Bus pio_{"port I/O"};
  Bus mmio_{"MMIO"};
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<HostConsoles> consoles_;
  std::unique_ptr<kvm::KvmIrqLine> com1_irq_;
  std::shared_ptr<devices::Uart8250> com1_;
  // virtiofsd children of --fs DIR: stopped after their devices have stopped their rings.
  std::vector<std::unique_ptr<devices::VirtiofsdProcess>> virtiofsd_;
  UniqueFd backend_log_;  // config_.backend_log, opened for the first virtiofsd
  // Declared after everything the PCI devices use (VM, memory, loop, console output), so that
  // they are destroyed first.
  std::unique_ptr<pci::PciBus> pci_;
  // Every virtio device, for the run record: its id and PCI address, and its transport (owned by
  // pci_).
  struct VirtioSlot {
    std::string id;
    std::string pci;
    virtio::VirtioPciTransport* transport;
  };
  std::vector<VirtioSlot> virtio_slots_;
  UniqueFd signal_fd_;
  EventLoop::Registration signal_reg_;
  UniqueFd timer_fd_;
  EventLoop::Registration timer_reg_;
  std::vector<std::unique_ptr<VcpuThread>> vcpus_;
  // The balloon, when there is one (owned by its transport in pci_), and the timer that asks the
  // guest for its statistics (served by the loop, so not while paused).
  devices::VirtioBalloon* balloon_ = nullptr;
  uint32_t balloon_stats_interval_s_ = 0;  // under pause_mutex_ once run() runs
  UniqueFd balloon_timer_fd_;
  EventLoop::Registration balloon_timer_reg_;
  // Every disk, in config_.disks' order: synced by pause() (a read-only one has nothing to
  // sync), given a new medium by replaceDiskMedium; owned by their transports in pci_.
  std::vector<devices::VirtioBlock*> disks_;
  std::mutex pause_mutex_;
  std::condition_variable pause_cv_;
  bool running_ = false;       // under pause_mutex_: run() has started the loop and the vCPUs
  bool paused_ = false;        // under pause_mutex_
  bool stopping_ = false;      // under pause_mutex_: run() is stopping everything
  bool start_paused_ = false;  // a restore without resume: run() starts with everything paused
  std::chrono::steady_clock::time_point started_;  // set before running_
  // Boot vCPU entry, decided by the loader.
  uint64_t entry_ = 0;
  bool entry_pvh_ = true;
  uint64_t start_info_ = 0;
};

}  // namespace ember::vmm
