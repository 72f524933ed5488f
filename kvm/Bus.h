// An address-range bus: maps [base, base+len) ranges of port or MMIO space to devices and
// dispatches vCPU exits to them.
//
// It lives at the bottom layer (beside the KVM objects whose exits it dispatches) so that pci/
// can remap BARs on it without depending on devices/. Ranges are refused when empty, when they
// overflow, or when they overlap an existing range. A device is always handed the offset of the
// access inside its range, never the absolute address, and only accesses that lie entirely inside
// one range reach a device (hostile-guest case 24: an access running past a BAR's end is not
// passed on). Lookups take a shared lock; vCPU threads dispatch concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>

#include "kvm/Result.h"

namespace ember {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `data.size()` is the access width (1, 2, 4 or 8, or longer for string I/O chunks).
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// A region served by two member functions of an owner that serves several regions (a PCI function
// with an I/O BAR and a memory BAR, say).
template <typename Owner, void (Owner::*Read)(uint64_t, std::span<uint8_t>),
          void (Owner::*Write)(uint64_t, std::span<const uint8_t>)>
class ForwardingRegion : public BusDevice {
 public:
  explicit ForwardingRegion(Owner& owner) : owner_(owner) {}
  void read(uint64_t offset, std::span<uint8_t> data) override { (owner_.*Read)(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    (owner_.*Write)(offset, data);
  }

 private:
  Owner& owner_;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  Result<void> insert(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> device);
  // Removes the range starting at `base` if it belongs to `device`; returns whether it did.
  bool remove(uint64_t base, const BusDevice* device);
  // Whether any part of [base, base+len) is claimed.
  bool overlaps(uint64_t base, uint64_t len) const;

  // Dispatches an access. Returns false (and leaves reads untouched) when no single range holds
  // the whole access.
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  const std::string& name() const { return name_; }

 private:
  struct Range {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  // Finds the device holding [addr, addr+size) and the offset inside it.
  std::shared_ptr<BusDevice> lookup(uint64_t addr, uint64_t size, uint64_t& offset) const;

  std::string name_;
  mutable std::shared_mutex mutex_;
  std::map<uint64_t, Range> ranges_;  // base -> range
};

}  // namespace ember
