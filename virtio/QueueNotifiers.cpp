// Queue kick eventfds, their registration with KVM and the loop, and their handover.
#include "virtio/QueueNotifiers.h"

#include "kvm/Log.h"
#include "virtio/VirtioPciLayout.h"

namespace ember::virtio {

QueueNotifiers::QueueNotifiers(kvm::Vm* vm, EventLoop& loop, std::string name, uint16_t queues,
                               KickHandler on_kick)
    : vm_(vm),
      loop_(loop),
      name_(std::move(name)),
      on_kick_(std::move(on_kick)),
      notifiers_(queues) {}

QueueNotifiers::~QueueNotifiers() {
  detachAll();
}

Result<EventLoop::Registration> QueueNotifiers::serve(uint16_t queue,
                                                      const std::shared_ptr<EventFd>& fd) {
  // The callback holds the eventfd and the counter itself: a detach on a vCPU thread may drop the
  // registration while the loop thread is inside this callback.
  return loop_.add(fd->fd(), EPOLLIN, [fd, kicks = kicks_, on_kick = on_kick_, queue](uint32_t) {
    if (uint64_t n = fd->consume(); n != 0) {
      kicks->fetch_add(n, std::memory_order_relaxed);
      on_kick(queue);
    }
  });
}

Result<void> QueueNotifiers::attach(uint16_t queue, const kvm::IoEventAddress& where) {
  if (queue >= notifiers_.size()) {
    return makeError(Errc::OutOfRange, "{}: no queue {}", name_, queue);
  }
  if (notifiers_[queue]) {
    return makeError(Errc::Busy, "{}: queue {} already has a kick eventfd", name_, queue);
  }
  auto fd = std::make_shared<EventFd>(EMBER_TRY(EventFd::create()));
  if (vm_ != nullptr) {
    EMBER_TRY(vm_->addIoEvent(where, fd->fd()));
  }
  auto registration = serve(queue, fd);
  if (!registration) {
    if (vm_ != nullptr) {
      (void)vm_->removeIoEvent(where, fd->fd());
    }
    return std::move(registration).error();
  }
  notifiers_[queue] = Notifier{std::move(fd), where, std::move(*registration)};
  return {};
}

void QueueNotifiers::setBarAddress(bool legacy_bar, std::optional<uint64_t> address) {
  (legacy_bar ? legacy_bar_ : modern_bar_) = address;
}

void QueueNotifiers::attachLive(const DriverState& state) {
  std::optional<uint64_t> base = state.legacy ? legacy_bar_ : modern_bar_;
  if (anyAttached() || !base) {
    return;
  }
  for (uint16_t q = 0; q < state.queues.size() && q < notifiers_.size(); ++q) {
    if (!state.queues[q].enabled) continue;
    if (auto r = attach(q, notifyAddress(state.legacy, *base, q)); !r) {
      log::warn("{}: queue {}: {}; kicks will exit to userspace", name_, q, r.error().message);
    }
  }
}

std::vector<uint16_t> QueueNotifiers::detachAll() {
  std::vector<uint16_t> pending;
  for (uint16_t q = 0; q < notifiers_.size(); ++q) {
    auto& n = notifiers_[q];
    if (!n) {
      continue;
    }
    n->registration.reset();
    if (vm_ != nullptr) {
      (void)vm_->removeIoEvent(n->where, n->fd->fd());
    }
    // A kick that landed between the last loop wake-up and the removal is still in the eventfd:
    // look once more so that it is not lost.
    if (uint64_t waiting = n->fd->consume(); waiting != 0) {
      kicks_->fetch_add(waiting, std::memory_order_relaxed);
      pending.push_back(q);
    }
    n.reset();
  }
  return pending;
}

bool QueueNotifiers::attached(uint16_t queue) const {
  return queue < notifiers_.size() && notifiers_[queue].has_value();
}

bool QueueNotifiers::anyAttached() const {
  for (const auto& n : notifiers_) {
    if (n) return true;
  }
  return false;
}

Result<int> QueueNotifiers::handOver(uint16_t queue) {
  if (!attached(queue)) {
    return makeError(Errc::NotFound, "{}: queue {} has no kick eventfd to hand over", name_, queue);
  }
  Notifier& n = *notifiers_[queue];
  if (!n.registration.active()) {
    return makeError(Errc::Busy, "{}: queue {}'s kick eventfd is already handed over", name_,
                     queue);
  }
  n.registration.reset();
  log::debug("{}: queue {}'s kicks handed to a backend", name_, queue);
  return n.fd->fd();
}

bool QueueNotifiers::handedOver(uint16_t queue) const {
  return attached(queue) && !notifiers_[queue]->registration.active();
}

bool QueueNotifiers::takeBack(uint16_t queue) {
  if (!handedOver(queue)) {
    return false;
  }
  Notifier& n = *notifiers_[queue];
  // A kick the backend left unread is reported here, for the caller to deliver, before the loop
  // serves the eventfd again (the caller holds the lock the kick handler takes).
  uint64_t waiting = n.fd->consume();
  kicks_->fetch_add(waiting, std::memory_order_relaxed);
  if (auto r = serve(queue, n.fd); r) {
    n.registration = std::move(*r);
  } else {
    log::error("{}: queue {}: {}; its kicks are lost until the next reset", name_, queue,
               r.error().message);
  }
  log::debug("{}: queue {}'s kicks taken back from a backend", name_, queue);
  return waiting != 0;
}

}  // namespace ember::virtio
