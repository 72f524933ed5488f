// MSI-X table semantics (PCI Local Bus 3.0, section 6.8.2) and KVM irqfd delivery.
#include "pci/Msix.h"

#include <algorithm>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"

namespace ember::pci {

MsixState::MsixState(uint16_t vectors, MsiSink& sink) : sink_(sink), entries_(vectors) {}

bool MsixState::enabled() const {
  std::lock_guard lock(mutex_);
  return enabled_;
}

uint16_t MsixState::control() const {
  std::lock_guard lock(mutex_);
  return static_cast<uint16_t>((entries_.size() - 1) | (enabled_ ? kControlEnable : 0) |
                               (function_mask_ ? kControlFunctionMask : 0));
}

void MsixState::writeControl(uint16_t value) {
  {
    std::lock_guard lock(mutex_);
    enabled_ = value & kControlEnable;
    function_mask_ = value & kControlFunctionMask;
    flushPendingLocked();
  }
  notifyObserver(std::nullopt);
}

void MsixState::setObserver(std::function<void(std::optional<uint16_t>)> observer) {
  std::lock_guard lock(mutex_);
  observer_ = std::move(observer);
}

void MsixState::notifyObserver(std::optional<uint16_t> vector) {
  std::function<void(std::optional<uint16_t>)> observer;
  {
    std::lock_guard lock(mutex_);
    observer = observer_;
  }
  if (observer) {
    observer(vector);
  }
}

bool MsixState::routeForDirectDelivery(uint16_t vector) {
  std::lock_guard lock(mutex_);
  if (vector >= entries_.size() || !deliverableLocked(entries_[vector])) {
    return false;
  }
  Entry& e = entries_[vector];
  if (!e.routed) {
    sink_.setRoute(vector, (static_cast<uint64_t>(e.addr_hi) << 32) | e.addr_lo, e.data);
    e.routed = true;
  }
  return true;
}

bool MsixState::deliverableLocked(const Entry& e) const {
  return enabled_ && !function_mask_ && !(e.control & 1);
}

void MsixState::sendLocked(uint16_t vector) {
  Entry& e = entries_[vector];
  if (!e.routed) {
    // The route follows the table entry: programmed on the first message after a change.
    sink_.setRoute(vector, (static_cast<uint64_t>(e.addr_hi) << 32) | e.addr_lo, e.data);
    e.routed = true;
  }
  sink_.fire(vector);
}

void MsixState::flushPendingLocked() {
  for (uint16_t v = 0; v < entries_.size(); ++v) {
    Entry& e = entries_[v];
    if (e.pending && deliverableLocked(e)) {
      e.pending = false;
      sendLocked(v);
    }
  }
}

bool MsixState::notify(uint16_t vector) {
  std::lock_guard lock(mutex_);
  if (vector >= entries_.size()) {
    return false;
  }
  Entry& e = entries_[vector];
  if (deliverableLocked(e)) {
    sendLocked(vector);
  } else {
    e.pending = true;
  }
  return true;
}

bool MsixState::pending(uint16_t vector) const {
  std::lock_guard lock(mutex_);
  return vector < entries_.size() && entries_[vector].pending;
}

bool MsixState::masked(uint16_t vector) const {
  std::lock_guard lock(mutex_);
  return vector >= entries_.size() || (entries_[vector].control & 1);
}

void MsixState::reset() {
  {
    std::lock_guard lock(mutex_);
    enabled_ = false;
    function_mask_ = false;
    for (auto& e : entries_) {
      e = Entry{};
    }
  }
  notifyObserver(std::nullopt);
}

void MsixState::save(StateWriter& w) const {
  std::lock_guard lock(mutex_);
  w.u32(static_cast<uint32_t>(entries_.size()));
  for (const Entry& e : entries_) {
    w.u32(e.addr_lo);
    w.u32(e.addr_hi);
    w.u32(e.data);
    w.u32(e.control);
    w.boolean(e.pending);
  }
  w.boolean(enabled_);
  w.boolean(function_mask_);
}

void MsixState::load(StateReader& r) {
  {
    std::lock_guard lock(mutex_);
    uint32_t n = r.count("MSI-X table size", 2048);  // PCI 3.0 6.8.2.3: at most 2048 entries
    if (r.ok() && n != entries_.size()) {
      r.fail("MSI-X table size",
             fmt::format("{} entries, but this device has {}", n, entries_.size()));
    }
    std::vector<Entry> loaded(entries_.size());
    for (size_t i = 0; i < n && r.ok(); ++i) {
      Entry& e = loaded[i];
      e.addr_lo = r.u32("MSI-X entry address") & ~0x3u;  // as a table write stores them
      e.addr_hi = r.u32("MSI-X entry upper address");
      e.data = r.u32("MSI-X entry data");
      e.control = r.u32("MSI-X entry vector control") & 1;
      e.pending = r.boolean("MSI-X pending bit");
    }
    bool enabled = r.boolean("MSI-X enable");
    bool function_mask = r.boolean("MSI-X function mask");
    if (!r.ok()) return;
    entries_ = std::move(loaded);
    enabled_ = enabled;
    function_mask_ = function_mask;
    // Nothing is sent here: a real snapshot holds no pending bit of a deliverable vector (it
    // would have been sent), and a tampered one's goes with the next message or control write.
  }
  notifyObserver(std::nullopt);
}

namespace {
bool validAccess(uint64_t offset, size_t size, uint64_t limit) {
  // Dword or qword, naturally aligned, entirely inside the structure.
  return (size == 4 || size == 8) && offset % size == 0 && offset < limit && size <= limit - offset;
}
}  // namespace

void MsixState::tableRead(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard lock(mutex_);
  if (!validAccess(offset, data.size(), entries_.size() * kEntrySize)) {
    return;
  }
  for (size_t i = 0; i < data.size(); i += 4) {
    uint64_t o = offset + i;
    const Entry& e = entries_[o / kEntrySize];
    uint32_t fields[4] = {e.addr_lo, e.addr_hi, e.data, e.control};
    storeLe(data.subspan(i, 4), fields[(o % kEntrySize) / 4]);
  }
}

void MsixState::tableWrite(uint64_t offset, std::span<const uint8_t> data) {
  std::optional<uint16_t> changed;
  {
    std::lock_guard lock(mutex_);
    if (!validAccess(offset, data.size(), entries_.size() * kEntrySize)) {
      log::debug("msix: ignored {}-byte table write at {:#x}", data.size(), offset);
      return;
    }
    changed = static_cast<uint16_t>(offset / kEntrySize);  // an access never spans two entries
    writeEntriesLocked(offset, data);
  }
  notifyObserver(changed);
}

void MsixState::writeEntriesLocked(uint64_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size(); i += 4) {
    uint64_t o = offset + i;
    uint16_t vector = static_cast<uint16_t>(o / kEntrySize);
    Entry& e = entries_[vector];
    uint32_t v = loadLe<uint32_t>(data.subspan(i, 4));
    switch ((o % kEntrySize) / 4) {
      case 0:
        e.addr_lo = v & ~0x3u;
        e.routed = false;
        break;  // bits 1:0 reserved (dword aligned)
      case 1:
        e.addr_hi = v;
        e.routed = false;
        break;
      case 2:
        e.data = v;
        e.routed = false;
        break;
      case 3:
        e.control = v & 1;
        break;  // only the mask bit is defined
    }
    if (e.pending && deliverableLocked(e)) {
      e.pending = false;
      sendLocked(vector);
    }
  }
}

void MsixState::pbaRead(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard lock(mutex_);
  uint64_t pba_bytes = ((entries_.size() + 63) / 64) * 8;
  if (!validAccess(offset, data.size(), pba_bytes)) {
    return;
  }
  for (size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      uint64_t v = (offset + i) * 8 + bit;
      if (v < entries_.size() && entries_[v].pending) {
        data[i] |= static_cast<uint8_t>(1u << bit);
      }
    }
  }
}

void MsixCapability::load(PciConfigSpace& config, const MsixState& msix, uint16_t offset,
                          uint8_t size) const {
  if (offset < control_ + 2 && control_ < offset + size) {
    config.set16(control_, msix.control());
  }
}

bool MsixCapability::store(const PciConfigSpace& config, MsixState& msix, uint16_t offset,
                           uint8_t size) const {
  if (offset < control_ + 2 && control_ < offset + size) {
    msix.writeControl(config.get16(control_));
    return true;
  }
  return false;
}

void MsixBarRegion::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= pba_offset_) {
    state_.pbaRead(offset - pba_offset_, data);
  } else if (offset >= table_offset_) {
    state_.tableRead(offset - table_offset_, data);
  } else {
    std::fill(data.begin(), data.end(), 0);
  }
}

void MsixBarRegion::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= pba_offset_) {
    return;  // the PBA is read-only
  }
  if (offset >= table_offset_) {
    state_.tableWrite(offset - table_offset_, data);
  }
}

KvmMsiSink::KvmMsiSink(kvm::Vm& vm, uint16_t vectors) : vm_(vm), vectors_(vectors) {}

KvmMsiSink::~KvmMsiSink() {
  for (auto& v : vectors_) {
    if (v.irqfd) {
      (void)vm_.removeIrqfd(v.gsi, v.irqfd->fd());
      vm_.releaseMsiGsi(v.gsi);
    }
  }
}

void KvmMsiSink::setRoute(uint16_t vector, uint64_t address, uint32_t data) {
  Vector& v = vectors_[vector];
  if (!v.irqfd) {
    auto gsi = vm_.allocateMsiGsi();
    auto efd = EventFd::create();
    if (!gsi || !efd) {
      log::error("msix: cannot allocate an interrupt for vector {}: {}", vector,
                 !gsi ? gsi.error().message : efd.error().message);
      return;
    }
    if (auto r = vm_.addIrqfd(*gsi, efd->fd()); !r) {
      log::error("msix: {}", r.error().message);
      vm_.releaseMsiGsi(*gsi);
      return;
    }
    v.gsi = *gsi;
    v.irqfd = std::make_unique<EventFd>(std::move(*efd));
  }
  if (auto r = vm_.setMsiRoute(v.gsi, address, data); !r) {
    log::error("msix: vector {}: {}", vector, r.error().message);
  }
}

void KvmMsiSink::fire(uint16_t vector) {
  if (vector < vectors_.size() && vectors_[vector].irqfd) {
    vectors_[vector].irqfd->signal();
  }
}

Result<void> KvmMsiSink::attachIrqfd(uint16_t vector, int event_fd) {
  if (vector >= vectors_.size() || !vectors_[vector].irqfd) {
    return makeError(Errc::NotFound, "msix: vector {} has no MSI route to attach an irqfd to",
                     vector);
  }
  // KVM allows several irqfds on one GSI: the backend's next to the one ember fires itself.
  return vm_.addIrqfd(vectors_[vector].gsi, event_fd);
}

void KvmMsiSink::detachIrqfd(uint16_t vector, int event_fd) {
  if (vector < vectors_.size() && vectors_[vector].irqfd) {
    if (auto r = vm_.removeIrqfd(vectors_[vector].gsi, event_fd); !r) {
      log::error("msix: vector {}: {}", vector, r.error().message);
    }
  }
}

}  // namespace ember::pci
