// A transitional virtio-pci device (virtio 1.2, 4.1): one device core behind two register
// layouts, as QEMU's 2011 virtio-pci and kvmtool's pci-legacy/pci-modern did. The pieces, each in
// its own type:
//   - VirtioPciLayout: the PCI identity, the BARs and the capability list;
//   - DriverState and VirtioPciFaces: what the driver sets, decoded from either layout (touching
//     the legacy guest-features, queue PFN or status register puts the device in legacy mode
//     until the next reset);
//   - QueueNotifiers: with ioeventfd=on, one eventfd per queue registered with KVM at DRIVER_OK
//     (PIO with the queue index as datamatch on the legacy notify register; MMIO at each queue's
//     notify address on the modern face) and served by the event loop; with ioeventfd=off the
//     notify write exits to userspace and the queue is processed on that vCPU thread;
//   - VirtioInterrupt: the ISR and INTx, the MSI-X vectors and table;
//   - AvailRingWatch: with ioeventfd=on and polling on, the event loop polls each live queue's
//     available ring between events (EventLoop::Poller) and delivers what it finds as a kick,
//     with the driver's notifications suppressed while it polls.
// This class ties them together: the status state machine's effects (activation moves the queues
// into the device, reset takes them back), kicks, bus mastering, and the PCI configuration
// space's live fields.
//
// Locking: one mutex guards DriverState and the activation, and is held while calling into the
// device; the host callbacks (queueUsed, configChanged, needsReset) never take it, so devices
// may call them from any thread, including from inside notify(). Helpers named *Locked expect
// it held.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "kvm/EventLoop.h"
#include "kvm/InterruptLine.h"
#include "kvm/Log.h"
#include "kvm/Vm.h"
#include "pci/Msix.h"
#include "pci/PciDevice.h"
#include "virtio/AvailRingWatch.h"
#include "virtio/BusMasterGate.h"
#include "virtio/DriverState.h"
#include "virtio/PciCfgAccess.h"
#include "virtio/QueueNotifiers.h"
#include "virtio/VirtioDevice.h"
#include "virtio/VirtioInterrupt.h"
#include "virtio/VirtioPciFaces.h"
#include "virtio/VirtioPciLayout.h"

namespace ember::virtio {

struct TransportOptions {
  bool ioeventfd = true;
  // With ioeventfd: the event loop may poll the queues' available rings (its poll window decides
  // when and how long); off, every kick is an eventfd wake-up.
  bool poll = true;
};

// Host services the transport uses; vm and loop may be null in unit tests (kicks then only arrive
// through notify-register writes).
struct TransportEnvironment {
  kvm::Vm* vm = nullptr;
  EventLoop* loop = nullptr;
  const GuestMemory* memory = nullptr;
};

// What the transport has seen, for the run record (ember run --report).
struct TransportCounters {
  uint64_t activations = 0;
  std::optional<bool> legacy;    // the interface of the last activation; none before the first
  uint64_t kicks_ioeventfd = 0;  // kicks KVM signalled through an ioeventfd
  uint64_t kicks_userspace = 0;  // notify-register writes that exited to userspace
  uint64_t kicks_polled = 0;     // new buffers the event loop found by polling, without a kick
  uint64_t interrupts_msix = 0;  // queue and config interrupts raised through MSI-X
  uint64_t interrupts_intx = 0;  // ... and through the ISR and INTx
};

class VirtioPciTransport : public pci::PciDevice, private VirtioDeviceHost {
 public:
  static constexpr int kLegacyBar = layout::kLegacyBar, kMsixBar = layout::kMsixBar,
                       kModernBar = layout::kModernBar;
  static constexpr uint64_t kModernBarSize = layout::kModernBarSize;
  static constexpr uint64_t kCommonOffset = layout::kCommonOffset, kIsrOffset = layout::kIsrOffset,
                            kDeviceOffset = layout::kDeviceOffset,
                            kNotifyOffset = layout::kNotifyOffset;
  static constexpr uint32_t kNotifyMultiplier = layout::kNotifyMultiplier;
  static constexpr uint64_t kMsixTableOffset = layout::kMsixTableOffset,
                            kMsixPbaOffset = layout::kMsixPbaOffset;

  VirtioPciTransport(std::unique_ptr<VirtioDevice> device, const TransportEnvironment& env,
                     std::unique_ptr<pci::MsiSink> msi, const TransportOptions& options);
  ~VirtioPciTransport() override;

  // The INTx line (IOAPIC pin) used when MSI-X is disabled; set once the slot is known.
  void setIntxLine(std::unique_ptr<InterruptLine> line);

  VirtioDevice& device() { return *device_; }
  const VirtioDevice& device() const { return *device_; }
  // Whether the queues' kicks are served through KVM ioeventfds now (TransportOptions, then
  // setIoeventfd).
  bool ioeventfd() const { return ioeventfd_.load(std::memory_order_relaxed); }
  // PATCH /ember/devices/{id}: switches the kick path of a running device, with I/O in flight.
  // Off: the eventfds leave KVM and a kick one of them still held is delivered, so the next
  // notify-register write exits to userspace and none is lost; on: the live queues get their
  // eventfds again (and, with poll=on, the loop may poll them). Refused while a backend serves a
  // queue's kicks, or where there is no VM and loop to register them with.
  Result<void> setIoeventfd(bool on);
  uint8_t status() const;
  // What the driver has set, as a value (snapshots save it; tests compare it).
  DriverState driverState() const;
  bool legacyMode() const { return driverState().legacy; }
  TransportCounters counters() const;

  // A snapshot (issue 13), with the VM paused: the driver's state, the interrupt state (ISR,
  // MSI-X table and PBA), and for a live device each queue's position and the device's own
  // state, written after the device completed what it had in flight (a device that cannot say
  // what its state is refuses: VirtioDevice::saveState). loadState restores it into a transport
  // built as the saved one was, before any vCPU runs, from untrusted bytes: the driver's state is
  // decoded with its checks, the vectors checked against the table, the live queues validated as an
  // activation validates them; then the device is activated at the saved positions and given its
  // state.
  static constexpr size_t kMaxDeviceState = 1 << 20;
  Result<void> saveState(StateWriter& w) override;
  Result<void> loadState(StateReader& r) override;

  // PciDevice
  uint32_t configRead(uint16_t offset, uint8_t size) override;
  void configWrite(uint16_t offset, uint8_t size, uint32_t value) override;
  void barMoved(int index, std::optional<uint64_t> address) override;
  void commandChanged(uint16_t old_value, uint16_t new_value) override;

  // Register access, called by the BAR regions (any vCPU thread).
  void legacyRead(uint64_t offset, std::span<uint8_t> data);
  void legacyWrite(uint64_t offset, std::span<const uint8_t> data);
  void modernRead(uint64_t offset, std::span<uint8_t> data);
  void modernWrite(uint64_t offset, std::span<const uint8_t> data);
  using LegacyBar = ForwardingRegion<VirtioPciTransport, &VirtioPciTransport::legacyRead,
                                     &VirtioPciTransport::legacyWrite>;
  using ModernBar = ForwardingRegion<VirtioPciTransport, &VirtioPciTransport::modernRead,
                                     &VirtioPciTransport::modernWrite>;

  // A kick for `queue` (from an ioeventfd or a notify-register write).
  void kick(uint16_t queue);

  VirtioInterrupt& interrupt() { return interrupt_; }

  // The event loop's poll phase (EventLoop::Poller, on the loop thread): suppress the live
  // queues' notifications, deliver buffers found without a kick, and resume notifications
  // (true when buffers arrived meanwhile, which are delivered).
  void beginPolling();
  bool pollQueues();
  bool endPolling();

 private:
  class LoopPoller;
  // VirtioDeviceHost
  void queueUsed(uint16_t queue, SplitQueue& q) override;
  void configChanged() override;
  void needsReset(const std::string& reason) override;
  bool mayProcess() const override { return may_process_.load(std::memory_order_acquire); }
  // From inside the device's activate() and reset(), with the lock held (QueueNotifiers,
  // VirtioInterrupt).
  Result<int> handOverKick(uint16_t queue) override;
  void takeBackKick(uint16_t queue) override;
  Result<int> handOverInterrupt(uint16_t queue) override { return interrupt_.handOver(queue); }
  void takeBackInterrupt(uint16_t queue) override { interrupt_.takeBack(queue); }

  FaceContext faceContext() const;
  void applyLocked(const FaceWrite& write);
  void applyStatusLocked(const StatusChange& change);
  void activateLocked();
  // The device live on QUEUES (validated): kick eventfds, polling watches, activate().
  Result<void> startDeviceLocked(QueueSet queues);
  // Every enabled queue looked at once (after an activation, while DMA is allowed).
  void notifyEnabledLocked();
  void stopDeviceLocked();
  void resetLocked();
  void kickLocked(uint16_t queue);
  void detachNotifiersLocked(bool deliver_pending);
  // The loop's poller of this transport (from the constructor, or setIoeventfd under mutex_).
  void startPolling();
  // With poller_: the available-ring watches of the live queues, for the loop to poll.
  void startWatchesLocked(const QueueSet& queues);
  // Whether the loop polls queue `queue` now: live, its eventfd attached and not handed over,
  // DMA allowed.
  bool polledLocked(uint16_t queue) const;
  // Every suppressed queue asks for kicks again (before a reset or bus mastering off: the
  // driver must not be left without them); with `drop`, the watches go.
  void resumeWatchesLocked(bool drop);
  void warnGuest(const std::string& what);

  std::unique_ptr<VirtioDevice> device_;
  TransportEnvironment env_;
  TransportOptions options_;
  VirtioInterrupt interrupt_;
  // With a VM and an event loop; its eventfds are attached while ioeventfd_ is on.
  std::optional<QueueNotifiers> notifiers_;
  // With notifiers_ and poll=on, once ioeventfd_ has been on (set under mutex_; read without
  // it only by the destructor).
  std::shared_ptr<LoopPoller> poller_;
  EventLoop::Registration poller_registration_;
  log::RateLimit guest_warnings_;  // guest-triggered warnings: never a log flood
  pci::MsixCapability msix_cap_;
  PciCfgAccess pci_cfg_;

  mutable std::mutex mutex_;
  DriverState state_;
  bool active_ = false;
  BusMasterGate dma_;
  std::vector<std::optional<AvailRingWatch>> watches_;  // per queue while active, when polled

  // Read by host callbacks and the counters without the lock.
  std::atomic<bool> needs_reset_{false};
  std::atomic<bool> ioeventfd_;  // written under mutex_
  std::atomic<bool> may_process_{true};
  std::atomic<uint8_t> config_generation_{0};
  std::atomic<uint64_t> activations_{0}, kicks_userspace_{0}, kicks_polled_{0};
  std::atomic<bool> last_face_legacy_{false};
};

}  // namespace ember::virtio
