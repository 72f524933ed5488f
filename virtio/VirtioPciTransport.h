// A transitional virtio-pci device (virtio 1.2, 4.1): one device core behind two register
// layouts, as QEMU's 2011 virtio-pci and kvmtool's pci-legacy/pci-modern did.
//
//   BAR0  I/O     legacy interface (4.1.5.1): features, queue PFN/size/select/notify, status,
//                 ISR, MSI-X vectors (when MSI-X is on), then the device configuration
//   BAR1  memory  MSI-X table (offset 0) and PBA (offset 0x800)
//   BAR4  memory  (64-bit) modern interface: common cfg 0x0000, ISR 0x1000, device cfg 0x2000,
//                 notify 0x3000 (queue i at 0x3000 + 4*i; notify_off_multiplier 4)
//
// Capabilities: MSI-X, then the virtio vendor capabilities (common, notify, ISR, device, PCI cfg
// access). Which face is in use follows the driver: touching the legacy guest-features register
// puts the device in legacy mode until the next reset.
//
// Kicks: with ioeventfd=on, at DRIVER_OK one eventfd per queue is registered with KVM (PIO with
// the queue index as datamatch on the legacy notify register; MMIO at each queue's notify address
// on the modern face) and served by the event loop; with ioeventfd=off the notify write exits to
// userspace and the queue is processed on that vCPU thread. Interrupts: an MSI-X vector per queue
// and one for configuration changes, or INTx with the ISR when MSI-X is off.
//
// Locking: the transport mutex guards register state and is held while calling into the device;
// the host callbacks (queueUsed, configChanged, needsReset) never take it, so devices may call
// them from any thread, including from inside notify().
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "kvm/EventLoop.h"
#include "kvm/InterruptLine.h"
#include "kvm/Log.h"
#include "kvm/UniqueFd.h"
#include "kvm/Vm.h"
#include "pci/Msix.h"
#include "pci/PciDevice.h"
#include "virtio/VirtioDevice.h"
#include "virtio/VirtioSpec.h"

namespace ember::virtio {

struct TransportOptions {
  bool ioeventfd = true;
};

// What the transport has seen, for the run record (ember run --report).
struct TransportCounters {
  uint64_t activations = 0;
  std::optional<bool> legacy;    // the interface of the last activation; none before the first
  uint64_t kicks_ioeventfd = 0;  // kicks KVM signalled through an ioeventfd
  uint64_t kicks_userspace = 0;  // notify-register writes that exited to userspace
  uint64_t interrupts_msix = 0;  // queue and config interrupts raised through MSI-X
  uint64_t interrupts_intx = 0;  // ... and through the ISR and INTx
};

// Host services the transport uses; vm and loop may be null in unit tests (kicks then only arrive
// through notify-register writes).
struct TransportEnvironment {
  kvm::Vm* vm = nullptr;
  EventLoop* loop = nullptr;
  const GuestMemory* memory = nullptr;
};

class VirtioPciTransport : public pci::PciDevice, private VirtioDeviceHost {
 public:
  static constexpr int kLegacyBar = 0, kMsixBar = 1, kModernBar = 4;
  static constexpr uint64_t kModernBarSize = 0x4000;
  static constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000, kDeviceOffset = 0x2000,
                            kNotifyOffset = 0x3000;
  static constexpr uint32_t kNotifyMultiplier = 4;
  static constexpr uint64_t kMsixTableOffset = 0, kMsixPbaOffset = 0x800;

  VirtioPciTransport(std::unique_ptr<VirtioDevice> device, const TransportEnvironment& env,
                     std::unique_ptr<pci::MsiSink> msi, const TransportOptions& options);
  ~VirtioPciTransport() override;

  // The INTx line (IOAPIC pin) used when MSI-X is disabled; set once the slot is known.
  void setIntxLine(std::unique_ptr<InterruptLine> line);

  VirtioDevice& device() { return *device_; }
  const VirtioDevice& device() const { return *device_; }
  uint8_t status() const;
  bool legacyMode() const;

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

  // A kick for `queue` (from an ioeventfd or a notify-register write).
  void kick(uint16_t queue);
  TransportCounters counters() const;
  const TransportOptions& options() const { return options_; }

 private:
  struct QueueConfig {
    uint16_t size = 0;
    bool enabled = false;
    uint64_t desc = 0, driver = 0, device = 0;
    uint32_t legacy_pfn = 0;
  };
  class LegacyRegion;
  class ModernRegion;

  // VirtioDeviceHost
  void queueUsed(uint16_t queue, SplitQueue& q) override;
  void configChanged() override;
  void needsReset(const std::string& reason) override;
  bool mayProcess() const override { return may_process_.load(std::memory_order_acquire); }

  uint64_t offeredFeaturesLocked() const;
  void writeStatusLocked(uint8_t value);
  void activateLocked();
  void resetLocked();
  void raiseLocked(bool config);  // INTx/MSI-X delivery (also used without the lock)
  void raise(bool config, uint16_t vector);
  void updateIntx();
  bool processingAllowedLocked() const;
  uint16_t checkedVector(uint16_t vector) const;

  void registerIoEventsLocked();
  void unregisterIoEventsLocked(bool deliver_pending);

  uint32_t readCommonLocked(uint64_t offset, uint8_t size);
  void writeCommonLocked(uint64_t offset, uint8_t size, uint64_t value);
  void deviceConfigRead(uint32_t offset, std::span<uint8_t> data);
  void deviceConfigWrite(uint32_t offset, std::span<const uint8_t> data);
  void notifyFromRegister(uint64_t queue_value);

  std::unique_ptr<VirtioDevice> device_;
  TransportEnvironment env_;
  TransportOptions options_;
  std::unique_ptr<pci::MsiSink> msi_sink_;
  pci::MsixState msix_;
  std::unique_ptr<InterruptLine> intx_;
  log::RateLimit guest_warnings_;  // guest-triggered warnings: never a log flood
  uint8_t msix_cap_ = 0;
  uint8_t pci_cfg_cap_ = 0;

  mutable std::recursive_mutex mutex_;
  uint8_t status_ = 0;
  bool legacy_mode_ = false;
  uint32_t device_feature_select_ = 0;
  uint32_t driver_feature_select_ = 0;
  uint64_t driver_features_ = 0;
  uint16_t queue_select_ = 0;
  std::vector<QueueConfig> queue_cfg_;
  std::vector<std::optional<SplitQueue>> active_queues_;
  bool active_ = false;
  bool bus_master_ = false;
  bool bus_master_ever_ = false;
  std::vector<bool> deferred_kicks_;
  std::optional<uint64_t> legacy_bar_addr_, modern_bar_addr_;

  // Read by host callbacks without the transport lock.
  std::atomic<uint16_t> config_vector_{kNoVector};
  std::unique_ptr<std::atomic<uint16_t>[]> queue_vectors_;
  std::atomic<uint8_t> isr_{0};
  std::atomic<bool> needs_reset_{false};
  std::atomic<bool> may_process_{true};
  std::atomic<uint8_t> config_generation_{0};
  std::atomic<bool> intx_disabled_{false};
  std::atomic<bool> intx_level_{false};
  std::atomic<uint64_t> activations_{0}, kicks_ioeventfd_{0}, kicks_userspace_{0},
      interrupts_msix_{0}, interrupts_intx_{0};
  std::atomic<bool> last_face_legacy_{false};
  std::mutex intx_mutex_;

  // ioeventfd=on: one eventfd per queue while active, shared with its loop callback.
  struct IoEvent {
    std::shared_ptr<EventFd> fd;
    kvm::IoEventAddress where;
    EventLoop::Registration registration;
  };
  std::vector<IoEvent> io_events_;
};

}  // namespace ember::virtio
