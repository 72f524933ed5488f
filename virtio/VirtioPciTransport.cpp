// The device core of the virtio-pci transport: PCI identity and capabilities, the status state
// machine, activation and reset, kicks and interrupts. The two register layouts are decoded in
// VirtioPciLegacy.cpp and VirtioPciModern.cpp.
#include "virtio/VirtioPciTransport.h"

#include <algorithm>

#include "kvm/Log.h"

namespace ember::virtio {

using namespace pci;

class VirtioPciTransport::LegacyRegion : public BusDevice {
 public:
  explicit LegacyRegion(VirtioPciTransport& t) : t_(t) {}
  void read(uint64_t offset, std::span<uint8_t> data) override { t_.legacyRead(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    t_.legacyWrite(offset, data);
  }

 private:
  VirtioPciTransport& t_;
};

class VirtioPciTransport::ModernRegion : public BusDevice {
 public:
  explicit ModernRegion(VirtioPciTransport& t) : t_(t) {}
  void read(uint64_t offset, std::span<uint8_t> data) override { t_.modernRead(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    t_.modernWrite(offset, data);
  }

 private:
  VirtioPciTransport& t_;
};

namespace {

uint64_t legacyBarSize(uint32_t config_size) {
  uint64_t need = legacy::kHeaderSizeMsix + config_size;
  uint64_t size = 0x40;
  while (size < need) size <<= 1;
  return size;
}

PciIds idsFor(const VirtioDevice& d) {
  // 4.1.2.1: transitional devices use the 0x1000-range device ID and the virtio type as the
  // subsystem ID; class codes follow the device kind.
  uint32_t class_code = 0xff0000;  // unclassified
  switch (d.deviceType()) {
    case device_type::kNet:
      class_code = 0x020000;
      break;
    case device_type::kBlock:
      class_code = 0x010000;
      break;
    case device_type::kConsole:
      class_code = 0x078000;
      break;
    default:
      break;
  }
  return PciIds{kVendorId, transitionalDeviceId(d.deviceType()), kVendorId, d.deviceType(), 0,
                class_code};
}

// A struct virtio_pci_cap body (4.1.4) after cap_vndr/cap_next.
std::vector<uint8_t> virtioCap(uint8_t cfg_type, uint8_t bar, uint32_t offset, uint32_t length,
                               size_t extra = 0) {
  std::vector<uint8_t> b(14 + extra, 0);
  b[0] = static_cast<uint8_t>(16 + extra);  // cap_len
  b[1] = cfg_type;
  b[2] = bar;
  b[3] = 0;  // id
  for (int i = 0; i < 4; ++i) {
    b[6 + i] = static_cast<uint8_t>(offset >> (8 * i));
    b[10 + i] = static_cast<uint8_t>(length >> (8 * i));
  }
  return b;
}

}  // namespace

VirtioPciTransport::VirtioPciTransport(std::unique_ptr<VirtioDevice> device,
                                       const TransportEnvironment& env,
                                       std::unique_ptr<MsiSink> msi,
                                       const TransportOptions& options)
    : PciDevice(device->name(), idsFor(*device)),
      device_(std::move(device)),
      env_(env),
      options_(options),
      msi_sink_(std::move(msi)),
      msix_(static_cast<uint16_t>(device_->queueCount() + 1), *msi_sink_) {
  uint16_t queues = device_->queueCount();
  queue_cfg_.resize(queues);
  active_queues_.resize(queues);
  deferred_kicks_.assign(queues, false);
  queue_vectors_ = std::make_unique<std::atomic<uint16_t>[]>(queues);
  for (uint16_t q = 0; q < queues; ++q) {
    queue_vectors_[q] = kNoVector;
    queue_cfg_[q].size = device_->queueMaxSize(q);
  }

  setBar(kLegacyBar, BarSpec{BarKind::Io, legacyBarSize(device_->configSize()), false,
                             std::make_shared<LegacyRegion>(*this)});
  setBar(kMsixBar,
         BarSpec{BarKind::Memory32, 0x1000, false,
                 std::make_shared<MsixBarRegion>(msix_, kMsixTableOffset, kMsixPbaOffset)});
  setBar(kModernBar,
         BarSpec{BarKind::Memory64, kModernBarSize, false, std::make_shared<ModernRegion>(*this)});

  // Interrupt pin INTA (the bus routes it to an IOAPIC pin by slot).
  config_.set8(cfg::kInterruptPin, 1);

  // MSI-X capability (PCI 3.0, 6.8.2): message control, table offset/BIR, PBA offset/BIR.
  uint16_t ctrl = static_cast<uint16_t>(msix_.size() - 1);
  uint32_t table = static_cast<uint32_t>(kMsixTableOffset) | kMsixBar;
  uint32_t pba = static_cast<uint32_t>(kMsixPbaOffset) | kMsixBar;
  uint8_t msix_body[10] = {static_cast<uint8_t>(ctrl),        static_cast<uint8_t>(ctrl >> 8),
                           static_cast<uint8_t>(table),       static_cast<uint8_t>(table >> 8),
                           static_cast<uint8_t>(table >> 16), static_cast<uint8_t>(table >> 24),
                           static_cast<uint8_t>(pba),         static_cast<uint8_t>(pba >> 8),
                           static_cast<uint8_t>(pba >> 16),   static_cast<uint8_t>(pba >> 24)};
  msix_cap_ = config_.addCapability(cfg::kCapIdMsix, msix_body);
  config_.setWritable(msix_cap_ + 2, 2,
                      MsixState::kControlEnable | MsixState::kControlFunctionMask);

  // Virtio capabilities (4.1.4).
  config_.addCapability(cfg::kCapIdVendor,
                        virtioCap(pci_cap::kCommon, kModernBar, kCommonOffset, common::kSize));
  auto notify = virtioCap(pci_cap::kNotify, kModernBar, kNotifyOffset,
                          std::max<uint32_t>(4, kNotifyMultiplier * queues), 4);
  for (int i = 0; i < 4; ++i) notify[14 + i] = static_cast<uint8_t>(kNotifyMultiplier >> (8 * i));
  config_.addCapability(cfg::kCapIdVendor, notify);
  config_.addCapability(cfg::kCapIdVendor, virtioCap(pci_cap::kIsr, kModernBar, kIsrOffset, 1));
  config_.addCapability(cfg::kCapIdVendor, virtioCap(pci_cap::kDevice, kModernBar, kDeviceOffset,
                                                     std::max<uint32_t>(4, device_->configSize())));
  // 4.1.4.9 PCI configuration access capability: bar, offset and length are driver-writable;
  // pci_cfg_data (4 bytes) is a window onto the BAR.
  pci_cfg_cap_ = config_.addCapability(cfg::kCapIdVendor, virtioCap(pci_cap::kPciCfg, 0, 0, 0, 4));
  config_.setWritable(pci_cfg_cap_ + 4, 1, 0xff);         // bar
  config_.setWritable(pci_cfg_cap_ + 8, 4, 0xffffffff);   // offset
  config_.setWritable(pci_cfg_cap_ + 12, 4, 0xffffffff);  // length
  config_.setWritable(pci_cfg_cap_ + 16, 4, 0xffffffff);  // pci_cfg_data
}

VirtioPciTransport::~VirtioPciTransport() {
  std::lock_guard lock(mutex_);
  resetLocked();
}

void VirtioPciTransport::setIntxLine(std::unique_ptr<InterruptLine> line) {
  std::lock_guard lock(intx_mutex_);
  intx_ = std::move(line);
}

uint8_t VirtioPciTransport::status() const {
  std::lock_guard lock(mutex_);
  return static_cast<uint8_t>(status_ | (needs_reset_ ? status::kNeedsReset : 0));
}

bool VirtioPciTransport::legacyMode() const {
  std::lock_guard lock(mutex_);
  return legacy_mode_;
}

// ---- PCI configuration space ----

uint32_t VirtioPciTransport::configRead(uint16_t offset, uint8_t size) {
  // MSI-X message control lives in MsixState; the interrupt-status bit follows INTx.
  if (touches(offset, size, msix_cap_ + 2, 2)) {
    uint16_t ctrl = msix_.control();
    config_.set16(msix_cap_ + 2, ctrl);
  }
  uint16_t st = config_.get16(cfg::kStatus) & ~cfg::kStatusInterrupt;
  config_.set16(cfg::kStatus,
                static_cast<uint16_t>(st | (intx_level_ ? cfg::kStatusInterrupt : 0)));
  if (touches(offset, size, pci_cfg_cap_ + 16, 4)) {
    // 4.1.4.9: a read of pci_cfg_data reads `length` bytes of BAR `bar` at `offset`.
    uint8_t bar = config_.get8(pci_cfg_cap_ + 4);
    uint32_t off = config_.get32(pci_cfg_cap_ + 8);
    uint32_t len = config_.get32(pci_cfg_cap_ + 12);
    uint8_t buf[4] = {0, 0, 0, 0};
    if ((len == 1 || len == 2 || len == 4) && bar < kBarCount && this->bar(bar).region &&
        off < this->bar(bar).size && len <= this->bar(bar).size - off) {
      this->bar(bar).region->read(off, std::span<uint8_t>(buf, len));
    }
    for (int i = 0; i < 4; ++i) config_.set8(pci_cfg_cap_ + 16 + i, buf[i]);
  }
  return PciDevice::configRead(offset, size);
}

void VirtioPciTransport::configWrite(uint16_t offset, uint8_t size, uint32_t value) {
  PciDevice::configWrite(offset, size, value);
  if (touches(offset, size, msix_cap_ + 2, 2)) {
    bool was_enabled = msix_.enabled();
    msix_.writeControl(config_.get16(msix_cap_ + 2));
    if (was_enabled != msix_.enabled()) {
      updateIntx();  // INTx is used only while MSI-X is off
    }
  }
  if (touches(offset, size, pci_cfg_cap_ + 16, 4)) {
    uint8_t bar = config_.get8(pci_cfg_cap_ + 4);
    uint32_t off = config_.get32(pci_cfg_cap_ + 8);
    uint32_t len = config_.get32(pci_cfg_cap_ + 12);
    if ((len == 1 || len == 2 || len == 4) && bar < kBarCount && this->bar(bar).region &&
        off < this->bar(bar).size && len <= this->bar(bar).size - off) {
      uint8_t buf[4];
      for (int i = 0; i < 4; ++i) buf[i] = config_.get8(pci_cfg_cap_ + 16 + i);
      this->bar(bar).region->write(off, std::span<const uint8_t>(buf, len));
    }
  }
}

void VirtioPciTransport::barMoved(int index, std::optional<uint64_t> address) {
  std::lock_guard lock(mutex_);
  bool registered = !io_events_.empty();
  if (registered) {
    unregisterIoEventsLocked(/*deliver_pending=*/true);
  }
  if (index == kLegacyBar) legacy_bar_addr_ = address;
  if (index == kModernBar) modern_bar_addr_ = address;
  if (registered || (active_ && options_.ioeventfd)) {
    registerIoEventsLocked();
  }
}

void VirtioPciTransport::commandChanged(uint16_t old_value, uint16_t new_value) {
  intx_disabled_ = new_value & cfg::kCommandIntxDisable;
  updateIntx();
  std::lock_guard lock(mutex_);
  bool bm = new_value & cfg::kCommandBusMaster;
  if (bm == static_cast<bool>(old_value & cfg::kCommandBusMaster)) {
    return;
  }
  bus_master_ = bm;
  may_process_ = processingAllowedLocked();
  if (bm) {
    bus_master_ever_ = true;
    // Work that arrived while bus mastering was off is done now.
    for (uint16_t q = 0; q < deferred_kicks_.size(); ++q) {
      if (deferred_kicks_[q]) {
        deferred_kicks_[q] = false;
        if (active_) device_->notify(q);
      }
    }
  } else if (active_) {
    log::warn("{}: bus mastering disabled while DRIVER_OK; queue processing paused", name());
  }
}

// ---- status state machine (2.1, 3.1.1) ----

uint64_t VirtioPciTransport::offeredFeaturesLocked() const {
  uint64_t f = device_->features();
  return legacy_mode_ ? (f & 0xffffffffULL) : (f | feature::kVersion1);
}

void VirtioPciTransport::writeStatusLocked(uint8_t value) {
  if (value == 0) {
    resetLocked();
    return;
  }
  uint8_t added = static_cast<uint8_t>(value & ~status_);
  if ((value & status_) != status_) {
    if (guest_warnings_.allow()) {
      log::warn("{}: driver tried to clear status bits {:#x} without a reset; ignored", name(),
                status_ & ~value);
    }
  }
  uint8_t next = static_cast<uint8_t>(status_ | value) & ~status::kNeedsReset;
  if (added & status::kFeaturesOk) {
    uint64_t offered = offeredFeaturesLocked();
    bool subset = (driver_features_ & ~offered) == 0;
    bool version_ok = legacy_mode_ || (driver_features_ & feature::kVersion1);
    if (!subset || !version_ok) {
      if (guest_warnings_.allow()) {
        log::warn("{}: FEATURES_OK refused: driver features {:#x} {} (offered {:#x})", name(),
                  driver_features_, !subset ? "include bits not offered" : "lack VERSION_1",
                  offered);
      }
      next &= static_cast<uint8_t>(~status::kFeaturesOk);
    }
  }
  if ((added & status::kDriverOk) && !legacy_mode_ && !(next & status::kFeaturesOk)) {
    if (guest_warnings_.allow()) {
      log::warn("{}: DRIVER_OK without FEATURES_OK on the modern interface; ignored", name());
    }
    next &= static_cast<uint8_t>(~status::kDriverOk);
  }
  status_ = next;
  if ((added & status::kDriverOk) && (status_ & status::kDriverOk)) {
    activateLocked();
  }
  if ((added & status::kFailed) && active_) {
    log::warn("{}: driver set FAILED; stopping the device", name());
    unregisterIoEventsLocked(false);
    device_->reset();
    active_queues_.assign(active_queues_.size(), std::nullopt);
    active_ = false;
  }
}

void VirtioPciTransport::activateLocked() {
  const GuestMemory* mem = env_.memory;
  if (mem == nullptr) {
    needsReset("no guest memory");
    return;
  }
  bool event_idx = driver_features_ & feature::kEventIdx;
  bool indirect = driver_features_ & feature::kIndirectDesc;
  Activation act{mem, driver_features_, {}, this};
  for (uint16_t q = 0; q < queue_cfg_.size(); ++q) {
    const QueueConfig& c = queue_cfg_[q];
    if (!c.enabled) {
      act.queues.push_back(nullptr);
      continue;
    }
    QueueGeometry g{c.size, c.desc, c.driver, c.device};
    auto queue = SplitQueue::activate(*mem, g, device_->queueMaxSize(q), event_idx, indirect);
    if (!queue) {
      needsReset(fmt::format("queue {}: {}", q, queue.error().message));
      return;
    }
    active_queues_[q].emplace(std::move(*queue));
    act.queues.push_back(&*active_queues_[q]);
  }
  if (auto r = device_->activate(act); !r) {
    active_queues_.assign(active_queues_.size(), std::nullopt);
    needsReset(r.error().message);
    return;
  }
  active_ = true;
  last_face_legacy_.store(legacy_mode_, std::memory_order_relaxed);
  activations_.fetch_add(1, std::memory_order_relaxed);
  log::debug("{}: activated ({} interface, features {:#x}, ioeventfd {})", name(),
             legacy_mode_ ? "legacy" : "modern", driver_features_,
             options_.ioeventfd ? "on" : "off");
  if (options_.ioeventfd) {
    registerIoEventsLocked();
  }
  // Buffers the driver queued before DRIVER_OK are processed now.
  for (uint16_t q = 0; q < queue_cfg_.size(); ++q) {
    if (active_queues_[q] && processingAllowedLocked()) {
      device_->notify(q);
    }
  }
}

void VirtioPciTransport::resetLocked() {
  // 2.4 / 4.1.5.1: stop the device first (in-flight I/O drained or cancelled), then forget the
  // queues, so nothing is written to guest memory after the reset completes.
  unregisterIoEventsLocked(false);
  if (active_) {
    device_->reset();
  }
  active_ = false;
  active_queues_.assign(active_queues_.size(), std::nullopt);
  status_ = 0;
  needs_reset_ = false;
  legacy_mode_ = false;
  driver_features_ = 0;
  device_feature_select_ = driver_feature_select_ = 0;
  queue_select_ = 0;
  for (uint16_t q = 0; q < queue_cfg_.size(); ++q) {
    queue_cfg_[q] = QueueConfig{};
    queue_cfg_[q].size = device_->queueMaxSize(q);
    queue_vectors_[q] = kNoVector;
  }
  std::fill(deferred_kicks_.begin(), deferred_kicks_.end(), false);
  config_vector_ = kNoVector;
  isr_ = 0;
  updateIntx();
}

bool VirtioPciTransport::processingAllowedLocked() const {
  // Bus mastering off means no DMA (hostile-guest case 26) -- except for drivers that never
  // turned it on at all, which historically worked and still must.
  return bus_master_ || !bus_master_ever_;
}

void VirtioPciTransport::kick(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (queue >= active_queues_.size()) {
    if (guest_warnings_.allow()) {
      log::warn("{}: notify for queue {} of {}; ignored", name(), queue, active_queues_.size());
    }
    return;
  }
  if (!active_ || !active_queues_[queue] || needs_reset_) {
    return;
  }
  if (!processingAllowedLocked()) {
    deferred_kicks_[queue] = true;
    return;
  }
  device_->notify(queue);
}

TransportCounters VirtioPciTransport::counters() const {
  TransportCounters c;
  c.activations = activations_.load(std::memory_order_relaxed);
  if (c.activations != 0) {
    c.legacy = last_face_legacy_.load(std::memory_order_relaxed);
  }
  c.kicks_ioeventfd = kicks_ioeventfd_.load(std::memory_order_relaxed);
  c.kicks_userspace = kicks_userspace_.load(std::memory_order_relaxed);
  c.interrupts_msix = interrupts_msix_.load(std::memory_order_relaxed);
  c.interrupts_intx = interrupts_intx_.load(std::memory_order_relaxed);
  return c;
}

void VirtioPciTransport::notifyFromRegister(uint64_t queue_value) {
  kicks_userspace_.fetch_add(1, std::memory_order_relaxed);
  if (queue_value > 0xffff) {
    return;
  }
  kick(static_cast<uint16_t>(queue_value));
}

// ---- ioeventfds ----

void VirtioPciTransport::registerIoEventsLocked() {
  if (!env_.vm || !env_.loop || !io_events_.empty() || !active_) {
    return;
  }
  for (uint16_t q = 0; q < active_queues_.size(); ++q) {
    if (!active_queues_[q]) {
      continue;
    }
    kvm::IoEventAddress where;
    if (legacy_mode_) {
      if (!legacy_bar_addr_) continue;
      where = kvm::IoEventAddress{true, *legacy_bar_addr_ + legacy::kQueueNotify, 2, q};
    } else {
      if (!modern_bar_addr_) continue;
      where = kvm::IoEventAddress{false, *modern_bar_addr_ + kNotifyOffset + kNotifyMultiplier * q,
                                  2, q};
    }
    auto efd = EventFd::create();
    if (!efd) {
      log::error("{}: {}", name(), efd.error().message);
      continue;
    }
    auto fd = std::make_shared<EventFd>(std::move(*efd));
    if (auto r = env_.vm->addIoEvent(where, fd->fd()); !r) {
      log::warn("{}: queue {}: {}; kicks will exit to userspace", name(), q, r.error().message);
      continue;
    }
    // The callback shares the eventfd: a reset on a vCPU thread may drop the registration while
    // the loop thread is inside this callback, and the fd must outlive that run.
    auto reg = env_.loop->add(fd->fd(), EPOLLIN, [this, fd, q](uint32_t) {
      if (uint64_t n = fd->consume(); n != 0) {
        kicks_ioeventfd_.fetch_add(n, std::memory_order_relaxed);
        kick(q);
      }
    });
    if (!reg) {
      (void)env_.vm->removeIoEvent(where, fd->fd());
      log::error("{}: {}", name(), reg.error().message);
      continue;
    }
    io_events_.push_back(IoEvent{std::move(fd), where, std::move(*reg)});
  }
}

void VirtioPciTransport::unregisterIoEventsLocked(bool deliver_pending) {
  std::vector<uint16_t> raced;
  for (auto& ev : io_events_) {
    ev.registration.reset();
    (void)env_.vm->removeIoEvent(ev.where, ev.fd->fd());
    // A kick that landed between the last loop wake-up and the removal is still in the
    // eventfd: look once more so that it is not lost.
    if (ev.fd->consume() != 0) {
      raced.push_back(static_cast<uint16_t>(*ev.where.datamatch));
    }
  }
  io_events_.clear();
  if (deliver_pending) {
    for (uint16_t q : raced) {
      kick(q);
    }
  }
}

// ---- interrupts (4.1.4.5, 4.1.5.3) ----

uint16_t VirtioPciTransport::checkedVector(uint16_t vector) const {
  return vector < msix_.size() ? vector : kNoVector;
}

void VirtioPciTransport::raise(bool config, uint16_t vector) {
  if (msix_.enabled()) {
    // A vector that cannot be used is checked again here, not only when it was written.
    if (vector == kNoVector) {
      return;
    }
    if (msix_.notify(vector)) {
      interrupts_msix_.fetch_add(1, std::memory_order_relaxed);
    } else if (guest_warnings_.allow()) {
      log::warn("{}: interrupt vector {} is outside the MSI-X table; dropped", name(), vector);
    }
    return;
  }
  interrupts_intx_.fetch_add(1, std::memory_order_relaxed);
  isr_.fetch_or(config ? kIsrConfig : kIsrQueue);
  updateIntx();
}

void VirtioPciTransport::updateIntx() {
  std::lock_guard lock(intx_mutex_);
  bool level = !msix_.enabled() && isr_.load() != 0 && !intx_disabled_;
  if (level != intx_level_.load()) {
    intx_level_ = level;
    if (intx_) {
      intx_->setLevel(level);
    }
  }
}

void VirtioPciTransport::queueUsed(uint16_t queue, SplitQueue& q) {
  auto want = q.shouldInterrupt();
  if (!want) {
    needsReset(want.error().message);
    return;
  }
  if (*want && queue < queue_cfg_.size()) {
    raise(false, queue_vectors_[queue].load());
  }
}

void VirtioPciTransport::configChanged() {
  config_generation_.fetch_add(1);
  raise(true, config_vector_.load());
}

void VirtioPciTransport::needsReset(const std::string& reason) {
  bool was = needs_reset_.exchange(true);
  if (!was) {
    log::warn("{}: {}; device needs reset", name(), reason);
    configChanged();
  }
}

}  // namespace ember::virtio
