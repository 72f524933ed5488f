// The device core of the virtio-pci transport: the status state machine's effects, activation and
// reset, kicks, bus mastering and the live fields of the PCI configuration space.
#include "virtio/VirtioPciTransport.h"

#include <algorithm>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"

namespace ember::virtio {

using namespace pci;

// The transport as the event loop polls it. The loop may still hold it for a call that has begun
// when the transport goes, so it holds the transport through a pointer that the transport's
// destructor clears under `mutex`. Lock order: this mutex, then the transport's.
class VirtioPciTransport::LoopPoller : public EventLoop::Poller {
 public:
  explicit LoopPoller(VirtioPciTransport* t) : t_(t) {}
  void detach() {
    std::lock_guard lock(mutex_);
    t_ = nullptr;
  }
  void beginPolling() override {
    std::lock_guard lock(mutex_);
    if (t_ != nullptr) t_->beginPolling();
  }
  bool poll() override {
    std::lock_guard lock(mutex_);
    return t_ != nullptr && t_->pollQueues();
  }
  bool endPolling() override {
    std::lock_guard lock(mutex_);
    return t_ != nullptr && t_->endPolling();
  }

 private:
  std::mutex mutex_;
  VirtioPciTransport* t_;
};

VirtioPciTransport::VirtioPciTransport(std::unique_ptr<VirtioDevice> device,
                                       const TransportEnvironment& env,
                                       std::unique_ptr<MsiSink> msi,
                                       const TransportOptions& options)
    : PciDevice(device->name(), virtioPciIds(device->deviceType())),
      device_(std::move(device)),
      env_(env),
      options_(options),
      interrupt_(device_->name(), device_->queueCount(), std::move(msi), env.loop),
      state_(DriverState::forQueues(device_->queueMaxSizes())),
      dma_(device_->queueCount()),
      ioeventfd_(options.ioeventfd) {
  if (env_.vm != nullptr && env_.loop != nullptr) {
    notifiers_.emplace(env_.vm, *env_.loop, device_->name(), device_->queueCount(),
                       [this](uint16_t q) { kick(q); });
    if (options_.ioeventfd && options_.poll) startPolling();
  }
  setBar(kLegacyBar, BarSpec{BarKind::Io, legacyBarSize(device_->configSize()), false,
                             std::make_shared<LegacyBar>(*this)});
  setBar(kMsixBar, BarSpec{BarKind::Memory32, layout::kMsixBarSize, false,
                           std::make_shared<MsixBarRegion>(interrupt_.msix(), kMsixTableOffset,
                                                           kMsixPbaOffset)});
  setBar(kModernBar,
         BarSpec{BarKind::Memory64, kModernBarSize, false, std::make_shared<ModernBar>(*this)});
  config_.set8(cfg::kInterruptPin, 1);  // INTA (the bus routes it to an IOAPIC pin by slot)
  auto caps = addVirtioCapabilities(config_, interrupt_.msix().size(), device_->queueCount(),
                                    device_->configSize());
  msix_cap_ = MsixCapability(caps.msix);
  pci_cfg_ = PciCfgAccess(caps.pci_cfg);
}

VirtioPciTransport::~VirtioPciTransport() {
  poller_registration_.reset();
  if (poller_) poller_->detach();  // waits for a poll call in progress
  std::lock_guard lock(mutex_);
  resetLocked();
}

void VirtioPciTransport::setIntxLine(std::unique_ptr<InterruptLine> line) {
  interrupt_.setIntxLine(std::move(line));
}

uint8_t VirtioPciTransport::status() const {
  std::lock_guard lock(mutex_);
  return static_cast<uint8_t>(state_.status | (needs_reset_ ? status::kNeedsReset : 0));
}

DriverState VirtioPciTransport::driverState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

TransportCounters VirtioPciTransport::counters() const {
  uint64_t activations = activations_.load(std::memory_order_relaxed);
  return TransportCounters{activations,
                           activations ? std::optional(last_face_legacy_.load()) : std::nullopt,
                           notifiers_ ? notifiers_->kicks() : 0,
                           kicks_userspace_.load(std::memory_order_relaxed),
                           kicks_polled_.load(std::memory_order_relaxed),
                           interrupt_.msixRaised(),
                           interrupt_.intxRaised()};
}

uint32_t VirtioPciTransport::configRead(uint16_t offset, uint8_t size) {
  // MSI-X message control lives in MsixState; the interrupt-status bit follows INTx.
  msix_cap_.load(config_, interrupt_.msix(), offset, size);
  uint16_t st = config_.get16(cfg::kStatus) & ~cfg::kStatusInterrupt;
  config_.set16(cfg::kStatus,
                static_cast<uint16_t>(st | (interrupt_.intxLevel() ? cfg::kStatusInterrupt : 0)));
  if (pci_cfg_.touchesData(offset, size)) {
    pci_cfg_.load(config_, *this);
  }
  return PciDevice::configRead(offset, size);
}

void VirtioPciTransport::configWrite(uint16_t offset, uint8_t size, uint32_t value) {
  PciDevice::configWrite(offset, size, value);
  if (msix_cap_.store(config_, interrupt_.msix(), offset, size)) {
    interrupt_.msixControlChanged();  // INTx is used only while MSI-X is off
  }
  if (pci_cfg_.touchesData(offset, size)) {
    pci_cfg_.store(config_, *this);
  }
}

void VirtioPciTransport::barMoved(int index, std::optional<uint64_t> address) {
  std::lock_guard lock(mutex_);
  if (!notifiers_ || (index != kLegacyBar && index != kModernBar)) {
    return;
  }
  // The kicks move with the notify registers; one that raced the move is delivered.
  detachNotifiersLocked(/*deliver_pending=*/true);
  notifiers_->setBarAddress(index == kLegacyBar, address);
  if (active_ && ioeventfd_) {
    notifiers_->attachLive(state_);
  }
}

void VirtioPciTransport::commandChanged(uint16_t old_value, uint16_t new_value) {
  interrupt_.setIntxDisabled(new_value & cfg::kCommandIntxDisable);
  std::lock_guard lock(mutex_);
  bool bm = new_value & cfg::kCommandBusMaster;
  if (bm == static_cast<bool>(old_value & cfg::kCommandBusMaster)) {
    return;
  }
  if (!bm) {
    resumeWatchesLocked(/*drop=*/false);  // the last ring writes before DMA stops
  }
  auto due = dma_.setBusMaster(bm);
  may_process_ = dma_.open();
  for (uint16_t q : due) {
    if (active_) device_->notify(q);  // work that arrived while bus mastering was off
  }
  if (!bm && active_) {
    log::warn("{}: bus mastering disabled while DRIVER_OK; queue processing paused", name());
  }
}

FaceContext VirtioPciTransport::faceContext() const {
  return FaceContext{device_->features(), interrupt_.msix().size(), interrupt_.msix().enabled(),
                     needs_reset_.load(), config_generation_.load()};
}

void VirtioPciTransport::legacyRead(uint64_t offset, std::span<uint8_t> data) {
  FaceContext c = faceContext();
  if (offset >= legacyHeaderSize(c.msix_enabled)) {
    std::lock_guard lock(mutex_);
    device_->readConfig(static_cast<uint32_t>(offset - legacyHeaderSize(c.msix_enabled)), data);
  } else if (offset == legacy::kIsr && data.size() == 1) {
    data[0] = interrupt_.readIsr();  // reading the ISR clears it and lowers INTx
  } else {
    std::lock_guard lock(mutex_);
    storeLe<uint32_t>(data, readLegacyRegister(state_, c, offset, data.size()));
  }
}

void VirtioPciTransport::legacyWrite(uint64_t offset, std::span<const uint8_t> data) {
  FaceContext c = faceContext();
  std::lock_guard lock(mutex_);
  if (offset >= legacyHeaderSize(c.msix_enabled)) {
    device_->writeConfig(static_cast<uint32_t>(offset - legacyHeaderSize(c.msix_enabled)), data);
  } else {
    applyLocked(writeLegacyRegister(state_, c, offset, data.size(), loadLe<uint32_t>(data)));
  }
}

void VirtioPciTransport::modernRead(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    std::lock_guard lock(mutex_);
    device_->readConfig(static_cast<uint32_t>(offset - kDeviceOffset), data);
  } else if (offset == kIsrOffset) {
    data[0] = interrupt_.readIsr();  // 4.1.4.5: reading the ISR clears it
  } else if (offset < common::kSize && data.size() <= 8) {
    FaceContext c = faceContext();
    std::lock_guard lock(mutex_);
    storeLe<uint64_t>(data, readCommonConfig(state_, c, offset, data.size()));
  }
}

void VirtioPciTransport::modernWrite(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    std::lock_guard lock(mutex_);
    device_->writeConfig(static_cast<uint32_t>(offset - kDeviceOffset), data);
  } else if (offset >= kNotifyOffset) {
    // 4.1.4.4: the queue is the one whose notify address was written.
    uint64_t rel = offset - kNotifyOffset;
    if (rel % kNotifyMultiplier == 0 && rel / kNotifyMultiplier <= 0xffff) {
      kicks_userspace_.fetch_add(1, std::memory_order_relaxed);
      kick(static_cast<uint16_t>(rel / kNotifyMultiplier));
    }
  } else if (offset < common::kSize && data.size() <= 8) {
    FaceContext c = faceContext();
    std::lock_guard lock(mutex_);
    applyLocked(writeCommonConfig(state_, c, offset, data.size(), loadLe<uint64_t>(data)));
  }
}

void VirtioPciTransport::applyLocked(const FaceWrite& w) {
  if (!w.warning.empty()) warnGuest(w.warning);
  switch (w.action) {
    case FaceWrite::Action::None:
      break;
    case FaceWrite::Action::Status:
      applyStatusLocked(w.status);
      break;
    case FaceWrite::Action::Reset:
      resetLocked();
      break;
    case FaceWrite::Action::Notify:
      kicks_userspace_.fetch_add(1, std::memory_order_relaxed);
      kickLocked(w.queue);
      break;
    case FaceWrite::Action::QueueVector:
      interrupt_.setQueueVector(w.queue, state_.queues[w.queue].vector);
      break;
    case FaceWrite::Action::ConfigVector:
      interrupt_.setConfigVector(state_.config_vector);
      break;
  }
}

void VirtioPciTransport::warnGuest(const std::string& what) {
  if (guest_warnings_.allow()) {
    log::warn("{}: {}", name(), what);
  }
}

void VirtioPciTransport::applyStatusLocked(const StatusChange& change) {
  for (const auto& refusal : change.refused) warnGuest(refusal);
  if (change.reset) {
    resetLocked();
    return;
  }
  if (change.activate) {
    activateLocked();
  }
  if (change.failed && active_) {
    log::warn("{}: driver set FAILED; stopping the device", name());
    stopDeviceLocked();
  }
}

void VirtioPciTransport::activateLocked() {
  if (env_.memory == nullptr) {
    needsReset("no guest memory");
    return;
  }
  auto queues = state_.liveQueues(*env_.memory);
  if (!queues) {
    needsReset(queues.error().message);
    return;
  }
  if (auto r = startDeviceLocked(std::move(*queues)); !r) {
    needsReset(r.error().message);
    return;
  }
  // Buffers the driver queued before DRIVER_OK are processed now.
  notifyEnabledLocked();
}

Result<void> VirtioPciTransport::startDeviceLocked(QueueSet queues) {
  // The kick eventfds exist before the device does, so that a device serving its queues through
  // a backend can hand them over from activate().
  if (notifiers_ && ioeventfd_) {
    notifiers_->attachLive(state_);
  }
  const uint64_t features = state_.driver_features;
  startWatchesLocked(queues);
  if (auto r = device_->activate(Activation{env_.memory, features, std::move(queues), this}); !r) {
    watches_.clear();
    detachNotifiersLocked(false);
    return r;
  }
  active_ = true;
  last_face_legacy_.store(state_.legacy, std::memory_order_relaxed);
  activations_.fetch_add(1, std::memory_order_relaxed);
  log::debug("{}: activated ({} interface, features {:#x}, ioeventfd {})", name(),
             state_.legacy ? "legacy" : "modern", features, ioeventfd_ ? "on" : "off");
  return okResult();
}

void VirtioPciTransport::notifyEnabledLocked() {
  for (uint16_t q = 0; q < state_.queues.size(); ++q) {
    if (state_.queues[q].enabled && dma_.open()) {
      device_->notify(q);
    }
  }
}

Result<void> VirtioPciTransport::saveState(StateWriter& w) {
  std::lock_guard lock(mutex_);
  state_.encode(w);
  w.boolean(active_);
  w.boolean(needs_reset_);
  w.u8(config_generation_);
  w.boolean(ioeventfd_);
  interrupt_.save(w);
  // The device completes what it has in flight before its queues' positions are read.
  StateWriter device;
  QueuePositions positions = EMBER_TRY(device_->saveState(device));
  if (active_) {
    w.u32(static_cast<uint32_t>(positions.size()));
    for (const auto& p : positions) {
      w.boolean(p.has_value());
      if (p) {
        w.u16(p->next_avail);
        w.u16(p->next_used);
        w.u16(p->signalled_used);
      }
    }
  }
  w.blob(device.data());
  return okResult();
}

Result<void> VirtioPciTransport::loadState(StateReader& r) {
  std::lock_guard lock(mutex_);
  if (active_ || state_.status != 0) {
    return makeError(Errc::Busy, "{}: restored into a device its driver has touched", name());
  }
  DriverState s = DriverState::decode(r, device_->queueMaxSizes());
  bool active = r.boolean("active");
  bool needs_reset = r.boolean("needs reset");
  uint8_t generation = r.u8("config generation");
  bool ioeventfd = r.boolean("ioeventfd");
  interrupt_.load(r);
  QueuePositions positions;
  if (active) {
    uint32_t n = r.count("queue positions", device_->queueCount());
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
      if (!r.boolean("queue position present")) {
        positions.emplace_back();
        continue;
      }
      QueuePosition p;
      p.next_avail = r.u16("next available index");
      p.next_used = r.u16("next used index");
      p.signalled_used = r.u16("signalled used index");
      positions.emplace_back(p);
    }
  }
  auto device_state = r.blob("device state", kMaxDeviceState);
  EMBER_TRY(r.finish());
  // The vectors are checked against the table as a driver's write of them is (4.1.4.3), but a
  // vector that write would store as NO_VECTOR is refused: the file is not what was saved.
  auto bad_vector = [&](uint16_t v) { return checkedVector(v, interrupt_.msix().size()) != v; };
  if (bad_vector(s.config_vector)) {
    return makeError(Errc::Format, "{}: the configuration vector {} is not in the MSI-X table",
                     name(), s.config_vector);
  }
  for (size_t q = 0; q < s.queues.size(); ++q) {
    if (bad_vector(s.queues[q].vector)) {
      return makeError(Errc::Format, "{}: queue {}'s vector {} is not in the MSI-X table", name(),
                       q, s.queues[q].vector);
    }
  }
  if (active && !s.driverOk()) {
    return makeError(Errc::Format, "{}: saved live without DRIVER_OK", name());
  }
  state_ = s;
  needs_reset_ = needs_reset;
  config_generation_ = generation;
  interrupt_.setConfigVector(state_.config_vector);
  for (uint16_t q = 0; q < state_.queues.size(); ++q) {
    interrupt_.setQueueVector(q, state_.queues[q].vector);
  }
  if (ioeventfd != ioeventfd_.load()) {
    // PATCH /ember/devices switched the kick path of the saved machine: it stays switched.
    if (ioeventfd && !notifiers_) {
      return makeError(Errc::Unsupported, "{}: saved with ioeventfd on; no VM to register it",
                       name());
    }
    ioeventfd_ = ioeventfd;
    if (ioeventfd && options_.poll && !poller_) startPolling();
  }
  if (active) {
    if (env_.memory == nullptr) return makeError(Errc::Unsupported, "{}: no guest memory", name());
    auto queues = state_.liveQueues(*env_.memory);
    if (!queues) return makeError(Errc::Format, "{}: {}", name(), queues.error().message);
    if (positions.size() != queues->size()) {
      return makeError(Errc::Format, "{}: {} queue positions for {} queues", name(),
                       positions.size(), queues->size());
    }
    for (size_t q = 0; q < queues->size(); ++q) {
      if ((*queues)[q].has_value() != positions[q].has_value()) {
        return makeError(Errc::Format, "{}: queue {} is {} but its position {}", name(), q,
                         (*queues)[q] ? "live" : "off", positions[q] ? "was saved" : "was not");
      }
      if ((*queues)[q]) (*queues)[q]->restorePosition(*positions[q]);
    }
    EMBER_TRY(startDeviceLocked(std::move(*queues)));
  }
  StateReader dr(device_state, fmt::format("{}'s own state", name()));
  device_->loadState(dr);
  EMBER_TRY(dr.finish());
  // A kick the guest made before the snapshot may still have been in an eventfd: each live
  // queue is looked at once.
  if (active_) notifyEnabledLocked();
  return okResult();
}

void VirtioPciTransport::stopDeviceLocked() {
  // The driver is asked for kicks again before the rings are handed back.
  resumeWatchesLocked(/*drop=*/true);
  // 2.4 / 4.1.5.1: the device stops first (in-flight I/O drained or cancelled, a backend's
  // rings stopped and their notifiers taken back) and hands its queues back, so nothing is
  // written to guest memory after the reset completes; then the kick eventfds go.
  if (active_) {
    (void)device_->reset();
  }
  active_ = false;
  detachNotifiersLocked(false);
}

void VirtioPciTransport::resetLocked() {
  stopDeviceLocked();
  state_.reset();
  needs_reset_ = false;
  dma_.forgetDeferred();
  interrupt_.reset();
}

void VirtioPciTransport::kick(uint16_t queue) {
  std::lock_guard lock(mutex_);
  kickLocked(queue);
}

void VirtioPciTransport::kickLocked(uint16_t queue) {
  if (queue >= state_.queues.size()) {
    warnGuest(fmt::format("notify for queue {} of {}; ignored", queue, state_.queues.size()));
    return;
  }
  if (!active_ || !state_.queues[queue].enabled || needs_reset_) {
    return;
  }
  if (!dma_.open()) {
    dma_.defer(queue);
    return;
  }
  device_->notify(queue);
}

void VirtioPciTransport::startPolling() {
  poller_ = std::make_shared<LoopPoller>(this);
  poller_registration_ = env_.loop->addPoller(poller_);
}

void VirtioPciTransport::startWatchesLocked(const QueueSet& queues) {
  watches_.assign(state_.queues.size(), std::nullopt);
  if (!poller_) return;
  for (uint16_t q = 0; q < queues.size() && q < watches_.size(); ++q) {
    if (queues[q]) {
      auto w = AvailRingWatch::start(*env_.memory, queues[q]->geometry(),
                                     state_.driver_features & feature::kEventIdx);
      if (w) watches_[q].emplace(std::move(*w));
    }
  }
}

Result<void> VirtioPciTransport::setIoeventfd(bool on) {
  std::lock_guard lock(mutex_);
  if (!notifiers_) {
    return makeError(Errc::Unsupported, "{}: there is no KVM VM and event loop to serve kicks",
                     name());
  }
  if (on == ioeventfd_.load()) return {};
  if (!on) {
    for (uint16_t q = 0; q < device_->queueCount(); ++q) {
      if (notifiers_->handedOver(q)) {
        return makeError(Errc::Busy,
                         "{}: queue {}'s kicks are served by its backend and cannot leave the "
                         "ioeventfd",
                         name(), q);
      }
    }
    // Unregistered from KVM first, then each eventfd read once more: a notify write lands
    // either in an eventfd (delivered here) or, from the removal on, exits to userspace and
    // waits for this lock. Queues the loop is polling stop being polled (polledLocked), and its
    // endPolling asks the driver for kicks again before the loop sleeps.
    ioeventfd_ = false;
    detachNotifiersLocked(/*deliver_pending=*/true);
  } else {
    ioeventfd_ = true;
    if (active_) notifiers_->attachLive(state_);
    if (options_.poll && !poller_) {
      startPolling();
      if (active_ && env_.memory != nullptr) {
        if (auto queues = state_.liveQueues(*env_.memory); queues) startWatchesLocked(*queues);
      }
    }
  }
  log::info("{}: kicks {}", name(),
            on ? "now go through KVM ioeventfds" : "now exit to userspace (ioeventfd off)");
  return {};
}

void VirtioPciTransport::detachNotifiersLocked(bool deliver_pending) {
  if (!notifiers_) {
    return;
  }
  for (uint16_t q : notifiers_->detachAll()) {
    if (deliver_pending) kickLocked(q);
  }
}

bool VirtioPciTransport::polledLocked(uint16_t queue) const {
  return queue < watches_.size() && watches_[queue] && active_ && !needs_reset_ && dma_.open() &&
         notifiers_ && notifiers_->attached(queue) && !notifiers_->handedOver(queue);
}

void VirtioPciTransport::beginPolling() {
  std::lock_guard lock(mutex_);
  for (uint16_t q = 0; q < watches_.size(); ++q) {
    if (polledLocked(q)) (void)watches_[q]->suppress();  // rings validated at activation
  }
}

bool VirtioPciTransport::pollQueues() {
  std::lock_guard lock(mutex_);
  bool found = false;
  for (uint16_t q = 0; q < watches_.size(); ++q) {
    if (!polledLocked(q)) continue;
    auto moved = watches_[q]->moved();
    if (moved && *moved) {
      kicks_polled_.fetch_add(1, std::memory_order_relaxed);
      kickLocked(q);
      found = true;
      // The device's ring processing asked for a kick at the next buffer (EVENT_IDX); the loop
      // is still polling, so take that back.
      if (polledLocked(q) && watches_[q]->suppressed()) (void)watches_[q]->suppress();
    }
  }
  return found;
}

bool VirtioPciTransport::endPolling() {
  std::lock_guard lock(mutex_);
  bool found = false;
  for (uint16_t q = 0; q < watches_.size(); ++q) {
    if (!watches_[q] || !watches_[q]->suppressed()) continue;
    // Found buffers are delivered even if the queue stopped being polled meanwhile: they count
    // as seen, so no kick will announce them (kickLocked defers them while DMA is off).
    auto moved = watches_[q]->resume();
    if (moved && *moved) {
      kicks_polled_.fetch_add(1, std::memory_order_relaxed);
      kickLocked(q);
      found = true;
    }
  }
  return found;
}

void VirtioPciTransport::resumeWatchesLocked(bool drop) {
  for (auto& w : watches_) {
    if (w && w->suppressed() && dma_.open()) (void)w->resume();
  }
  if (drop) watches_.clear();
}

Result<int> VirtioPciTransport::handOverKick(uint16_t queue) {
  if (!notifiers_ || !ioeventfd_) {
    return makeError(Errc::Unsupported, "{}: kicks are not served by eventfds (ioeventfd=off)",
                     name());
  }
  return notifiers_->handOver(queue);
}

void VirtioPciTransport::takeBackKick(uint16_t queue) {
  // From the device's reset(): a kick left unread belongs to a ring that is being torn down.
  if (notifiers_) {
    (void)notifiers_->takeBack(queue);
  }
}

// Host callbacks from the device: any thread, without the transport lock.

void VirtioPciTransport::queueUsed(uint16_t queue, SplitQueue& q) {
  auto want = q.shouldInterrupt();
  if (!want) {
    needsReset(want.error().message);
  } else if (*want) {
    interrupt_.raiseQueue(queue);
  }
}

void VirtioPciTransport::configChanged() {
  config_generation_.fetch_add(1);
  interrupt_.raiseConfig();
}

void VirtioPciTransport::needsReset(const std::string& reason) {
  if (!needs_reset_.exchange(true)) {
    log::warn("{}: {}; device needs reset", name(), reason);
    configChanged();
  }
}

}  // namespace ember::virtio
