// The event loop's view of one live split virtqueue while it polls (virtio 1.2, 2.7.10): it
// watches the driver's available index for buffers made available without a kick, and asks the
// driver not to kick while it watches. Without VIRTIO_F_EVENT_IDX that is the used ring's flags
// (VIRTQ_USED_F_NO_NOTIFY); with it, the avail_event field at the end of the used ring, which
// is left behind the driver's index so that the driver's next-event test (2.7.10.1,
// vring_need_event) never fires. Before the loop sleeps, resume() asks for a kick at the next
// buffer (flags 0, or avail_event = the driver's index as it reads it now), then, after a full
// fence, reads the index once more: a buffer the driver made available before it could see the
// request is found there, so that no buffer is left waiting for a kick that will not come.
//
// "Seen" is the transport's own mark, not the device's ring position: every buffer up to it has
// been announced to the device as a kick would announce it. The device's ring processing
// re-arms avail_event itself (SplitQueue::armNotification) and stays correct on its own; the
// watch only ever adds kicks or takes away kicks for buffers it has announced.
//
// The geometry must be one SplitQueue::activate() accepted (rings inside RAM). Not thread-safe:
// the transport uses it under its lock, on the loop thread.
#pragma once

#include <cstdint>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "virtio/SplitQueue.h"

namespace ember::virtio {

class AvailRingWatch {
 public:
  // Starts from the driver's index as it is now: buffers already there are the activation's to
  // serve.
  static Result<AvailRingWatch> start(const GuestMemory& mem, const QueueGeometry& geometry,
                                      bool event_idx);

  // True when the driver's available index moved since the last look (the new buffers count as
  // seen from now on).
  Result<bool> moved();
  // Asks the driver not to kick (idempotent).
  Result<void> suppress();
  // Asks the driver to kick again and looks once more: true when buffers arrived meanwhile.
  // Does nothing but look when not suppressed.
  Result<bool> resume();
  bool suppressed() const { return suppressed_; }
  uint16_t seen() const { return seen_; }

 private:
  AvailRingWatch(const GuestMemory& mem, const QueueGeometry& g, bool event_idx)
      : mem_(&mem), geo_(g), event_idx_(event_idx) {}
  Result<uint16_t> availIndex() const;
  Result<void> askForKicks(bool want);

  const GuestMemory* mem_;
  QueueGeometry geo_;
  bool event_idx_;
  bool suppressed_ = false;
  uint16_t seen_ = 0;
};

}  // namespace ember::virtio
