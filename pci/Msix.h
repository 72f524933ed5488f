// MSI-X (PCI Local Bus 3.0, section 6.8.2): the vector table, the pending-bit array, the enable
// and function-mask bits, and delivery through KVM irqfds.
//
// A device raises a vector with notify(). If MSI-X is enabled and neither the function nor the
// vector is masked, the message is sent at once (an eventfd write that KVM turns into an MSI
// through the vector's GSI route); otherwise the vector's pending bit is set and the message goes
// out when it is unmasked. Vector numbers are checked on every call (hostile-guest case 17), and
// table/PBA accesses must be aligned dwords or qwords inside the structure (case 19).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "kvm/Bus.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"
#include "kvm/UniqueFd.h"
#include "kvm/Vm.h"
#include "pci/PciConfigSpace.h"

namespace ember::pci {

// Where MSI messages go. The KVM implementation keeps one irqfd + GSI route per vector.
class MsiSink {
 public:
  virtual ~MsiSink() = default;
  // The vector's message is (address, data); it is deliverable now.
  virtual void setRoute(uint16_t vector, uint64_t address, uint32_t data) = 0;
  // Sends the vector's message (only called after setRoute for that vector).
  virtual void fire(uint16_t vector) = 0;
  // Direct delivery for an external backend: while attached, a signal of `event_fd` sends the
  // vector's message without ember (a KVM irqfd on the vector's route). Only called after
  // setRoute for that vector.
  virtual Result<void> attachIrqfd(uint16_t vector, int event_fd) = 0;
  virtual void detachIrqfd(uint16_t vector, int event_fd) = 0;
};

class MsixState {
 public:
  static constexpr uint16_t kEntrySize = 16;
  static constexpr uint16_t kControlEnable = 1u << 15;
  static constexpr uint16_t kControlFunctionMask = 1u << 14;

  MsixState(uint16_t vectors, MsiSink& sink);

  uint16_t size() const { return static_cast<uint16_t>(entries_.size()); }
  bool enabled() const;
  // Message Control as the guest sees it (table size - 1 in bits 10:0).
  uint16_t control() const;
  void writeControl(uint16_t value);

  void tableRead(uint64_t offset, std::span<uint8_t> data);
  void tableWrite(uint64_t offset, std::span<const uint8_t> data);
  void pbaRead(uint64_t offset, std::span<uint8_t> data);

  // Raises `vector`; false if it does not exist.
  bool notify(uint16_t vector);
  // For direct delivery (MsiSink::attachIrqfd): true when `vector`'s message can be sent now
  // (MSI-X on, neither the function nor the vector masked), with its route programmed.
  bool routeForDirectDelivery(uint16_t vector);
  // Called, without the state's lock held, after anything that may change whether or where a
  // vector's message goes: the enable or function-mask bits (no vector: all of them), a table
  // entry's address, data or mask bit, a reset. Set once by the owner; null clears it.
  void setObserver(std::function<void(std::optional<uint16_t> vector)> observer);
  bool pending(uint16_t vector) const;
  bool masked(uint16_t vector) const;
  // Back to the power-on state: disabled, every vector masked, nothing pending.
  void reset();
  // A snapshot's copy (issue 13): every entry's address, data, mask bit and pending bit, and the
  // enable and function-mask bits. load() reads untrusted bytes: the table must have this
  // state's size (errors are the reader's). The routes follow the loaded entries on their first
  // message, as after any table write; the observer is told.
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  struct Entry {
    uint32_t addr_lo = 0, addr_hi = 0, data = 0, control = 1;  // masked
    bool pending = false;
    bool routed = false;  // the sink holds this entry's current address and data
  };
  bool deliverableLocked(const Entry& e) const;
  void sendLocked(uint16_t vector);
  void flushPendingLocked();
  void writeEntriesLocked(uint64_t offset, std::span<const uint8_t> data);

  void notifyObserver(std::optional<uint16_t> vector);

  MsiSink& sink_;
  mutable std::mutex mutex_;
  std::function<void(std::optional<uint16_t>)> observer_;
  std::vector<Entry> entries_;
  bool enabled_ = false;
  bool function_mask_ = false;
};

// The MSI-X capability's Message Control register in configuration space (PCI 3.0, 6.8.2.3): a
// read shows MsixState's table size, enable and function-mask bits; a write goes to MsixState.
class MsixCapability {
 public:
  // `cap` is the capability's offset in configuration space.
  explicit MsixCapability(uint8_t cap = 0) : control_(static_cast<uint16_t>(cap + 2)) {}
  // Before a configuration read of [offset, offset + size): Message Control is refreshed.
  void load(PciConfigSpace& config, const MsixState& msix, uint16_t offset, uint8_t size) const;
  // After such a write: true when it reached Message Control (now applied to `msix`).
  bool store(const PciConfigSpace& config, MsixState& msix, uint16_t offset, uint8_t size) const;

 private:
  uint16_t control_;
};

// A BusDevice for a memory BAR holding the table at `table_offset` and the PBA at `pba_offset`.
class MsixBarRegion : public BusDevice {
 public:
  MsixBarRegion(MsixState& state, uint64_t table_offset, uint64_t pba_offset)
      : state_(state), table_offset_(table_offset), pba_offset_(pba_offset) {}
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  MsixState& state_;
  uint64_t table_offset_;
  uint64_t pba_offset_;
};

// MSI delivery through KVM: a GSI with an MSI route and an irqfd per vector, created the first
// time the vector is routed and torn down with the object.
class KvmMsiSink : public MsiSink {
 public:
  KvmMsiSink(kvm::Vm& vm, uint16_t vectors);
  ~KvmMsiSink() override;
  void setRoute(uint16_t vector, uint64_t address, uint32_t data) override;
  void fire(uint16_t vector) override;
  Result<void> attachIrqfd(uint16_t vector, int event_fd) override;
  void detachIrqfd(uint16_t vector, int event_fd) override;

 private:
  struct Vector {
    std::unique_ptr<EventFd> irqfd;
    uint32_t gsi = 0;
  };
  kvm::Vm& vm_;
  std::vector<Vector> vectors_;
};

}  // namespace ember::pci
