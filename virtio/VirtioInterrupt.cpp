// ISR, INTx, MSI-X vectors and the handover of queue interrupts.
#include "virtio/VirtioInterrupt.h"

namespace ember::virtio {

VirtioInterrupt::VirtioInterrupt(std::string name, uint16_t queues,
                                 std::unique_ptr<pci::MsiSink> sink, EventLoop* loop)
    : name_(std::move(name)),
      sink_(std::move(sink)),
      msix_(static_cast<uint16_t>(queues + 1), *sink_),
      loop_(loop),
      queue_vectors_(std::make_unique<std::atomic<uint16_t>[]>(queues)),
      queues_(queues),
      handovers_(queues) {
  for (uint16_t q = 0; q < queues; ++q) {
    queue_vectors_[q] = kNoVector;
  }
  // A masked, unmasked or re-addressed vector may change where a handed-over interrupt goes.
  msix_.setObserver([this](std::optional<uint16_t> vector) {
    std::lock_guard lock(handover_mutex_);
    for (uint16_t q = 0; q < queues_; ++q) {
      if (handovers_[q] && (!vector || queue_vectors_[q].load() == *vector)) {
        routeHandoverLocked(q);
      }
    }
  });
}

VirtioInterrupt::~VirtioInterrupt() {
  msix_.setObserver(nullptr);
  std::lock_guard lock(handover_mutex_);
  for (uint16_t q = 0; q < queues_; ++q) {
    releaseHandoverLocked(q);
  }
}

void VirtioInterrupt::setIntxLine(std::unique_ptr<InterruptLine> line) {
  std::lock_guard lock(intx_mutex_);
  intx_ = std::move(line);
}

void VirtioInterrupt::setIntxDisabled(bool disabled) {
  intx_disabled_ = disabled;
  updateIntx();
}

void VirtioInterrupt::msixControlChanged() {
  updateIntx();
}

void VirtioInterrupt::setQueueVector(uint16_t queue, uint16_t vector) {
  if (queue >= queues_) {
    return;
  }
  queue_vectors_[queue] = vector;
  std::lock_guard lock(handover_mutex_);
  if (handovers_[queue]) {
    routeHandoverLocked(queue);
  }
}

void VirtioInterrupt::setConfigVector(uint16_t vector) {
  config_vector_ = vector;
}

void VirtioInterrupt::raiseQueue(uint16_t queue) {
  if (queue < queues_) {
    raise(false, queue_vectors_[queue].load());
  }
}

void VirtioInterrupt::raiseConfig() {
  raise(true, config_vector_.load());
}

void VirtioInterrupt::raise(bool config, uint16_t vector) {
  if (msix_.enabled()) {
    if (vector == kNoVector) {
      return;  // the driver asked for no interrupt (case 17)
    }
    // A vector that cannot be used is checked again here, not only when it was written.
    if (msix_.notify(vector)) {
      msix_raised_.fetch_add(1, std::memory_order_relaxed);
    } else if (warnings_.allow()) {
      log::warn("{}: interrupt vector {} is outside the MSI-X table; dropped", name_, vector);
    }
    return;
  }
  intx_raised_.fetch_add(1, std::memory_order_relaxed);
  isr_.fetch_or(config ? kIsrConfig : kIsrQueue);
  updateIntx();
}

uint8_t VirtioInterrupt::readIsr() {
  uint8_t v = isr_.exchange(0);
  updateIntx();
  return v;
}

void VirtioInterrupt::updateIntx() {
  std::lock_guard lock(intx_mutex_);
  bool level = !msix_.enabled() && isr_.load() != 0 && !intx_disabled_;
  if (level != intx_level_.load()) {
    intx_level_ = level;
    if (intx_) {
      intx_->setLevel(level);
    }
  }
}

void VirtioInterrupt::reset() {
  {
    std::lock_guard lock(handover_mutex_);
    for (uint16_t q = 0; q < queues_; ++q) {
      releaseHandoverLocked(q);
    }
  }
  for (uint16_t q = 0; q < queues_; ++q) {
    queue_vectors_[q] = kNoVector;
  }
  config_vector_ = kNoVector;
  isr_ = 0;
  updateIntx();
}

void VirtioInterrupt::save(StateWriter& w) const {
  w.u8(isr_.load());
  msix_.save(w);
}

void VirtioInterrupt::load(StateReader& r) {
  uint8_t isr = r.u8("ISR");
  msix_.load(r);
  if (!r.ok()) return;
  isr_ = isr & 0x3;  // 4.1.4.5: bit 0 queue interrupt, bit 1 configuration change
  updateIntx();
}

Result<int> VirtioInterrupt::handOver(uint16_t queue) {
  if (loop_ == nullptr) {
    return makeError(Errc::Unsupported, "{}: no event loop to serve handed-over interrupts", name_);
  }
  std::lock_guard lock(handover_mutex_);
  if (queue >= queues_) {
    return makeError(Errc::OutOfRange, "{}: no queue {}", name_, queue);
  }
  if (handovers_[queue]) {
    return makeError(Errc::Busy, "{}: queue {}'s interrupt is already handed over", name_, queue);
  }
  auto call = std::make_shared<EventFd>(EMBER_TRY(EventFd::create()));
  handovers_[queue] = Handover{call, std::nullopt, {}};
  routeHandoverLocked(queue);
  log::debug("{}: queue {}'s interrupt handed to a backend", name_, queue);
  return call->fd();
}

void VirtioInterrupt::takeBack(uint16_t queue) {
  std::lock_guard lock(handover_mutex_);
  releaseHandoverLocked(queue);
}

bool VirtioInterrupt::handedOver(uint16_t queue) const {
  std::lock_guard lock(handover_mutex_);
  return queue < queues_ && handovers_[queue].has_value();
}

bool VirtioInterrupt::direct(uint16_t queue) const {
  std::lock_guard lock(handover_mutex_);
  return queue < queues_ && handovers_[queue] && handovers_[queue]->irqfd_vector.has_value();
}

void VirtioInterrupt::routeHandoverLocked(uint16_t queue) {
  Handover& h = *handovers_[queue];
  uint16_t vector = queue_vectors_[queue].load();
  // The vector's message can go out now: its route is programmed for direct delivery.
  bool deliverable = vector != kNoVector && msix_.routeForDirectDelivery(vector);
  if (h.irqfd_vector && (!deliverable || *h.irqfd_vector != vector)) {
    // Masked (or another vector): from now on the backend's signals stay in the eventfd, where
    // the loop finds them below.
    sink_->detachIrqfd(*h.irqfd_vector, h.call->fd());
    h.irqfd_vector.reset();
  }
  if (deliverable && !h.irqfd_vector) {
    // The loop stops first: KVM injects at once a signal already in the eventfd when the irqfd
    // is assigned, so none is lost in between.
    h.watch.reset();
    if (auto r = sink_->attachIrqfd(vector, h.call->fd()); r) {
      h.irqfd_vector = vector;
    } else if (warnings_.allow()) {
      log::warn("{}: queue {}: {}; its interrupts go through ember", name_, queue,
                r.error().message);
    }
  }
  if (!h.irqfd_vector && !h.watch.active()) {
    auto call = h.call;
    auto watch = loop_->add(call->fd(), EPOLLIN, [this, call, queue](uint32_t) {
      if (call->consume() != 0) {
        raiseQueue(queue);  // masked: sets the PBA bit; MSI-X off: the ISR and INTx
      }
    });
    if (watch) {
      h.watch = std::move(*watch);
    } else {
      log::error("{}: queue {}: {}; its handed-over interrupts are lost", name_, queue,
                 watch.error().message);
    }
  }
}

void VirtioInterrupt::releaseHandoverLocked(uint16_t queue) {
  auto& h = handovers_[queue];
  if (!h) {
    return;
  }
  if (h->irqfd_vector) {
    sink_->detachIrqfd(*h->irqfd_vector, h->call->fd());
  }
  h->watch.reset();
  // Signalled by the backend but not yet delivered: deliver it now.
  bool waiting = h->call->consume() != 0;
  h.reset();
  if (waiting) {
    raiseQueue(queue);
  }
  log::debug("{}: queue {}'s interrupt taken back from a backend", name_, queue);
}

}  // namespace ember::virtio
