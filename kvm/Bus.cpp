// Range bookkeeping and dispatch for the PIO and MMIO buses.
#include "kvm/Bus.h"

#include <mutex>

namespace ember {

Result<void> Bus::insert(uint64_t base, uint64_t len, std::shared_ptr<BusDevice> device) {
  uint64_t end = 0;
  if (len == 0 || __builtin_add_overflow(base, len, &end)) {
    return makeError(Errc::InvalidArgument, "{} bus: range {:#x}+{:#x} is empty or overflows",
                     name_, base, len);
  }
  std::unique_lock lock(mutex_);
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < end) {
    return makeError(Errc::Busy, "{} bus: range {:#x}+{:#x} overlaps the device at {:#x}", name_,
                     base, len, next->first);
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base) {
      return makeError(Errc::Busy, "{} bus: range {:#x}+{:#x} overlaps the device at {:#x}", name_,
                       base, len, prev->first);
    }
  }
  ranges_.emplace(base, Range{len, std::move(device)});
  return {};
}

bool Bus::remove(uint64_t base, const BusDevice* device) {
  std::unique_lock lock(mutex_);
  auto it = ranges_.find(base);
  if (it == ranges_.end() || it->second.device.get() != device) {
    return false;
  }
  ranges_.erase(it);
  return true;
}

bool Bus::overlaps(uint64_t base, uint64_t len) const {
  if (len == 0) {
    return false;  // an empty range overlaps nothing
  }
  uint64_t end = 0;
  if (__builtin_add_overflow(base, len, &end)) {
    end = UINT64_MAX;
  }
  std::shared_lock lock(mutex_);
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < end) {
    return true;
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    return prev->first + prev->second.len > base;
  }
  return false;
}

std::shared_ptr<BusDevice> Bus::lookup(uint64_t addr, uint64_t size, uint64_t& offset) const {
  std::shared_lock lock(mutex_);
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) {
    return nullptr;
  }
  --it;
  uint64_t off = addr - it->first;
  if (off >= it->second.len || size > it->second.len - off) {
    return nullptr;
  }
  offset = off;
  return it->second.device;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  uint64_t offset = 0;
  auto device = lookup(addr, data.size(), offset);
  if (!device) {
    return false;
  }
  device->read(offset, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  uint64_t offset = 0;
  auto device = lookup(addr, data.size(), offset);
  if (!device) {
    return false;
  }
  device->write(offset, data);
  return true;
}

}  // namespace ember
