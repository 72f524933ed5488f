// A KVM virtual machine: memory slots, the in-kernel irqchip, ioeventfds, irqfds and the GSI
// routing table.
//
// Thread-safe: vCPU threads and the event loop call into it concurrently (a driver setting
// DRIVER_OK registers ioeventfds from a vCPU thread; MSI-X unmasking updates routes). The
// routing table is kept here and re-submitted whole under a lock, because KVM_SET_GSI_ROUTING
// replaces the entire table.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "kvm/KvmSystem.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::kvm {

// Where an ioeventfd listens: a port or MMIO address, an access length (0 = any length, MMIO
// only) and an optional value the write must carry.
struct IoEventAddress {
  bool pio = false;
  uint64_t addr = 0;
  uint32_t len = 0;
  std::optional<uint64_t> datamatch;
};

class Vm {
 public:
  // Number of IOAPIC pins; GSIs below this are wired to the irqchip, MSI routes start here.
  static constexpr uint32_t kIoapicPins = 24;

  static Result<std::unique_ptr<Vm>> create(const KvmSystem& kvm);
  Vm(Vm&&) = delete;  // shared by address between threads; lives in a unique_ptr

  int fd() const { return fd_.get(); }
  const KvmSystem& system() const { return *kvm_; }

  // Creates the in-kernel IOAPIC+PIC+LAPIC and the PIT and sets the x86 TSS/identity pages.
  Result<void> setUpIrqchip(uint64_t tss_addr, uint64_t identity_map_addr);
  Result<void> setMemorySlot(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host);

  // Drives an IOAPIC/PIC input line (INTx, ISA IRQs).
  Result<void> setIrqLine(uint32_t irq, bool level);

  Result<void> addIoEvent(const IoEventAddress& where, int event_fd);
  Result<void> removeIoEvent(const IoEventAddress& where, int event_fd);

  Result<void> addIrqfd(uint32_t gsi, int event_fd);
  Result<void> removeIrqfd(uint32_t gsi, int event_fd);

  // MSI routes: a GSI per MSI-X vector that the guest has programmed and unmasked.
  Result<uint32_t> allocateMsiGsi();
  void releaseMsiGsi(uint32_t gsi);
  Result<void> setMsiRoute(uint32_t gsi, uint64_t address, uint32_t data);
  Result<void> clearMsiRoute(uint32_t gsi);

  // Injects one MSI directly (used where no irqfd is wired).
  Result<void> signalMsi(uint64_t address, uint32_t data);

 private:
  Vm() = default;
  Result<void> commitRoutesLocked();

  const KvmSystem* kvm_ = nullptr;
  UniqueFd fd_;
  std::mutex routes_mutex_;
  std::map<uint32_t, kvm_irq_routing_msi> msi_routes_;  // gsi -> route (only programmed ones)
  std::map<uint32_t, bool> allocated_gsis_;
  uint32_t next_gsi_ = kIoapicPins;
  uint32_t max_gsi_ = 0;
};

}  // namespace ember::kvm

#include "kvm/InterruptLine.h"

namespace ember::kvm {

// An IOAPIC/PIC input driven through KVM_IRQ_LINE.
class KvmIrqLine : public InterruptLine {
 public:
  KvmIrqLine(Vm& vm, uint32_t irq) : vm_(vm), irq_(irq) {}
  void setLevel(bool asserted) override;

 private:
  Vm& vm_;
  uint32_t irq_;
};

}  // namespace ember::kvm
