// The kick eventfds of a device's queues (virtio 1.2, 4.1.4.4 notification structure; 4.1.5.1
// legacy queue notify). With ioeventfd on, each live queue has an eventfd that KVM signals when
// the guest writes the queue's notify address (KVM_IOEVENTFD: the write never leaves the kernel),
// and the event loop reads it and calls the kick handler, which is the only thing the transport
// sees of it.
//
// A queue's eventfd can be handed to an external backend (vhost, vhost-user: the seed's
// set_host_notifier): KVM goes on signalling it, the loop stops reading it, and the backend
// reads it instead. Taking it back makes the loop read it again, and a kick that arrived while
// it changed hands (left unread in the eventfd) is reported then, so none is lost.
//
// Not thread-safe: the transport calls it under its own lock. The loop callbacks share each
// eventfd (a callback may still be running when its queue is detached from another thread) and
// count kicks in an atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kvm/EventLoop.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "kvm/Vm.h"
#include "virtio/DriverState.h"

namespace ember::virtio {

class QueueNotifiers {
 public:
  using KickHandler = std::function<void(uint16_t queue)>;

  // `vm` may be null (unit tests): the eventfds are then served from the loop without KVM, and a
  // test signals them itself.
  QueueNotifiers(kvm::Vm* vm, EventLoop& loop, std::string name, uint16_t queues,
                 KickHandler on_kick);
  ~QueueNotifiers();
  QueueNotifiers(const QueueNotifiers&) = delete;
  QueueNotifiers& operator=(const QueueNotifiers&) = delete;

  // Registers queue `queue`'s eventfd with KVM at `where` and serves it from the loop. On an
  // error nothing is registered: the queue's kicks exit to userspace instead.
  Result<void> attach(uint16_t queue, const kvm::IoEventAddress& where);
  // Where the notify registers are now: the legacy I/O BAR or the modern memory BAR moved
  // (nullopt: unmapped). Takes effect at the next attachLive().
  void setBarAddress(bool legacy_bar, std::optional<uint64_t> address);
  // Attaches every queue `state` has enabled, at its notify address on the face in use
  // (VirtioPciLayout's notifyAddress), unless the BAR is unmapped; a queue that cannot be
  // attached is logged and left to userspace exits. Nothing happens while any is attached.
  void attachLive(const DriverState& state);
  // Unregisters every queue (handed over or not). Returns the queues whose eventfd still held a
  // kick, for the caller to deliver or drop.
  std::vector<uint16_t> detachAll();
  bool attached(uint16_t queue) const;
  bool anyAttached() const;

  // The backend takes over queue `queue`'s eventfd: the returned fd stays owned here and valid
  // until takeBack() or detachAll(). Fails if the queue is not attached or already handed over.
  Result<int> handOver(uint16_t queue);
  // The loop serves the eventfd again. True when a kick was waiting in it, which the caller must
  // deliver (it holds the lock the kick handler would take).
  bool takeBack(uint16_t queue);
  bool handedOver(uint16_t queue) const;

  // Kicks the loop read from eventfds (each eventfd read counts the writes KVM signalled).
  uint64_t kicks() const { return kicks_->load(std::memory_order_relaxed); }

 private:
  struct Notifier {
    std::shared_ptr<EventFd> fd;
    kvm::IoEventAddress where;
    EventLoop::Registration registration;  // inactive while handed over
  };
  Result<EventLoop::Registration> serve(uint16_t queue, const std::shared_ptr<EventFd>& fd);

  kvm::Vm* vm_;
  std::optional<uint64_t> legacy_bar_, modern_bar_;
  EventLoop& loop_;
  std::string name_;
  KickHandler on_kick_;
  std::vector<std::optional<Notifier>> notifiers_;
  std::shared_ptr<std::atomic<uint64_t>> kicks_ = std::make_shared<std::atomic<uint64_t>>(0);
};

}  // namespace ember::virtio
