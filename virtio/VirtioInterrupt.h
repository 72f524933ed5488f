// A virtio-pci device's interrupts (virtio 1.2, 4.1.4.5 ISR status, 4.1.5.3 / 4.1.4.3 MSI-X
// vectors): the ISR byte and the INTx level it drives while MSI-X is off, the MSI-X vector of
// each queue and of configuration changes, and the MSI-X table (pci::MsixState, an irqfd per
// vector). Devices raise a queue or the configuration interrupt from any thread.
//
// A queue's interrupt can be handed to an external backend (vhost, vhost-user: the seed's
// set_guest_notifiers). The backend gets an eventfd to signal. While the queue's vector can be
// delivered, that eventfd is a KVM irqfd on the vector's MSI route: the interrupt never passes
// through ember. While the guest masks the vector, masks the function or has MSI-X off, the
// event loop reads the eventfd and raises the interrupt the ordinary way, which sets the vector's
// PBA bit (or the ISR and INTx); the irqfd comes back on unmask. Taking the interrupt back raises
// one that was signalled but not yet delivered.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvm/EventLoop.h"
#include "kvm/InterruptLine.h"
#include "kvm/Log.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "pci/Msix.h"
#include "virtio/VirtioSpec.h"

namespace ember::virtio {

class VirtioInterrupt {
 public:
  // One MSI-X vector per queue plus one for configuration changes. `loop` serves handed-over
  // interrupts while their vector is masked; it may be null when nothing is ever handed over.
  VirtioInterrupt(std::string name, uint16_t queues, std::unique_ptr<pci::MsiSink> sink,
                  EventLoop* loop);
  ~VirtioInterrupt();
  VirtioInterrupt(const VirtioInterrupt&) = delete;
  VirtioInterrupt& operator=(const VirtioInterrupt&) = delete;

  pci::MsixState& msix() { return msix_; }
  const pci::MsixState& msix() const { return msix_; }

  // The INTx line (IOAPIC pin), used while MSI-X is off; set once the slot is known.
  void setIntxLine(std::unique_ptr<InterruptLine> line);
  // PCI command register bit 10 (Interrupt Disable).
  void setIntxDisabled(bool disabled);
  bool intxLevel() const { return intx_level_.load(); }
  // MSI-X enable or function mask changed: INTx follows, handed-over interrupts re-route.
  void msixControlChanged();

  // The vectors the driver chose (already checked against the table: NO_VECTOR otherwise).
  void setQueueVector(uint16_t queue, uint16_t vector);
  void setConfigVector(uint16_t vector);

  void raiseQueue(uint16_t queue);
  void raiseConfig();
  // 4.1.4.5 / 4.1.5.1: reading the ISR returns it and clears it, which lowers INTx.
  uint8_t readIsr();
  // Virtio reset: vectors back to NO_VECTOR, the ISR cleared, every interrupt taken back. The
  // MSI-X table is PCI function state and stays.
  void reset();
  // A snapshot's copy (issue 13): the ISR and the MSI-X table and PBA (the vectors are the
  // driver's state, DriverState). load() reads untrusted bytes and drives INTx to what the
  // loaded ISR says.
  void save(StateWriter& w) const;
  void load(StateReader& r);

  // The backend's eventfd for queue `queue`'s interrupt; owned here, valid until takeBack() or
  // reset(). Fails without an event loop or when the queue's interrupt is already handed over.
  Result<int> handOver(uint16_t queue);
  void takeBack(uint16_t queue);
  bool handedOver(uint16_t queue) const;
  // Whether queue `queue`'s handed-over eventfd is a KVM irqfd now (false: the loop serves it).
  bool direct(uint16_t queue) const;

  uint64_t msixRaised() const { return msix_raised_.load(std::memory_order_relaxed); }
  uint64_t intxRaised() const { return intx_raised_.load(std::memory_order_relaxed); }

 private:
  struct Handover {
    std::shared_ptr<EventFd> call;
    std::optional<uint16_t> irqfd_vector;  // the vector the eventfd is an irqfd of, if any
    EventLoop::Registration watch;         // active while the loop serves the eventfd
  };
  void raise(bool config, uint16_t vector);
  void updateIntx();
  // Makes queue `queue`'s handed-over eventfd a KVM irqfd when its vector can be delivered, and
  // has the loop serve it otherwise.
  void routeHandoverLocked(uint16_t queue);
  void releaseHandoverLocked(uint16_t queue);

  std::string name_;
  std::unique_ptr<pci::MsiSink> sink_;
  pci::MsixState msix_;
  EventLoop* loop_;
  log::RateLimit warnings_;

  std::unique_ptr<std::atomic<uint16_t>[]> queue_vectors_;
  uint16_t queues_;
  std::atomic<uint16_t> config_vector_{kNoVector};
  std::atomic<uint8_t> isr_{0};

  std::mutex intx_mutex_;  // orders level changes of the line
  std::unique_ptr<InterruptLine> intx_;
  std::atomic<bool> intx_disabled_{false};
  std::atomic<bool> intx_level_{false};

  mutable std::mutex handover_mutex_;
  std::vector<std::optional<Handover>> handovers_;

  std::atomic<uint64_t> msix_raised_{0}, intx_raised_{0};
};

}  // namespace ember::virtio
