// Test-only PCI helpers: a pci::MsiSink that records what MSI-X delivered, a BusDevice that
// records the accesses it was given, and an InterruptLine that records its level.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "kvm/Bus.h"
#include "kvm/InterruptLine.h"
#include "pci/Msix.h"

namespace ember::pci::testing {

// Records setRoute and fire calls, and which eventfds are attached as irqfds (what KVM would
// deliver directly). Thread-safe: devices may raise interrupts from any thread.
class FakeMsiSink : public MsiSink {
 public:
  struct Route {
    uint16_t vector;
    uint64_t address;
    uint32_t data;
  };
  void setRoute(uint16_t vector, uint64_t address, uint32_t data) override {
    std::lock_guard lock(mutex_);
    routes_.push_back(Route{vector, address, data});
  }
  void fire(uint16_t vector) override {
    std::lock_guard lock(mutex_);
    fired_.push_back(vector);
  }
  Result<void> attachIrqfd(uint16_t vector, int event_fd) override {
    std::lock_guard lock(mutex_);
    if (refuse_attach) {
      return makeError(Errc::Kvm, "KVM_IRQFD refused (test)");
    }
    attached_.emplace_back(vector, event_fd);
    return {};
  }
  void detachIrqfd(uint16_t vector, int event_fd) override {
    std::lock_guard lock(mutex_);
    std::erase(attached_, std::pair<uint16_t, int>(vector, event_fd));
  }
  // The (vector, eventfd) pairs attached now.
  std::vector<std::pair<uint16_t, int>> attached() const {
    std::lock_guard lock(mutex_);
    return attached_;
  }
  bool refuse_attach = false;  // attachIrqfd fails, as when KVM refuses the irqfd
  std::vector<uint16_t> fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
  }
  std::vector<Route> routes() const {
    std::lock_guard lock(mutex_);
    return routes_;
  }
  size_t firedCount(uint16_t vector) const {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (uint16_t v : fired_) n += v == vector;
    return n;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    fired_.clear();
    routes_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Route> routes_;
  std::vector<uint16_t> fired_;
  std::vector<std::pair<uint16_t, int>> attached_;
};

// A BAR region that answers reads with a fixed byte pattern and records every access.
class RecordingRegion : public BusDevice {
 public:
  struct Access {
    bool write;
    uint64_t offset;
    size_t size;
  };
  explicit RecordingRegion(uint8_t fill = 0xa5) : fill_(fill) {}
  void read(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex_);
    accesses_.push_back(Access{false, offset, data.size()});
    for (auto& b : data) b = fill_;
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    accesses_.push_back(Access{true, offset, data.size()});
  }
  std::vector<Access> accesses() const {
    std::lock_guard lock(mutex_);
    return accesses_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    accesses_.clear();
  }

 private:
  uint8_t fill_;
  mutable std::mutex mutex_;
  std::vector<Access> accesses_;
};

// An INTx pin that remembers its level and every change.
class FakeInterruptLine : public InterruptLine {
 public:
  void setLevel(bool asserted) override {
    std::lock_guard lock(mutex_);
    level_ = asserted;
    changes_.push_back(asserted);
  }
  bool level() const {
    std::lock_guard lock(mutex_);
    return level_;
  }
  std::vector<bool> changes() const {
    std::lock_guard lock(mutex_);
    return changes_;
  }

 private:
  mutable std::mutex mutex_;
  bool level_ = false;
  std::vector<bool> changes_;
};

}  // namespace ember::pci::testing
