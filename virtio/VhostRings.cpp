// Handing virtqueues to a vhost backend and taking them back (see VhostRings.h).
#include "virtio/VhostRings.h"

#include <unistd.h>

#include "kvm/Log.h"

namespace ember::virtio {

Result<void> VhostRings::start(VhostBackend& backend, const GuestMemory& memory,
                               VirtioDeviceHost& host, uint16_t index, const SplitQueue& queue) {
  if (index >= rings_.size()) {
    return makeError(Errc::OutOfRange, "queue {} of {}", index, rings_.size());
  }
  const QueueGeometry& g = queue.geometry();
  // The rings' host addresses (2.7: the descriptor table, 16 bytes a descriptor; the available
  // ring, flags, idx, ring[size] and used_event; the used ring, flags, idx, 8-byte elements and
  // avail_event), each wholly inside guest RAM: a ring the guest put elsewhere never reaches the
  // backend.
  auto hostAddress = [&](const char* what, uint64_t gpa, uint64_t len) -> Result<uint64_t> {
    auto s = memory.slice(GuestAddress(gpa), len);
    if (!s) {
      return makeError(Errc::Guest, "queue {}'s {} at {:#x} ({} bytes) is not in guest RAM", index,
                       what, gpa, len);
    }
    return reinterpret_cast<uint64_t>(s->data());  // a pointer into guest RAM, as a number
  };
  uint64_t desc = EMBER_TRY(hostAddress("descriptor table", g.desc, 16ULL * g.size));
  uint64_t avail = EMBER_TRY(hostAddress("available ring", g.avail, 6 + 2ULL * g.size));
  uint64_t used = EMBER_TRY(hostAddress("used ring", g.used, 6 + 8ULL * g.size));
  Ring& ring = rings_[index];
  ring.started = true;
  EMBER_TRY(backend.setVringNum(index, g.size));
  EMBER_TRY(backend.setVringAddr(index, desc, used, avail));
  EMBER_TRY(backend.setVringBase(index, queue.nextAvail()));
  int kick = -1;
  if (auto k = host.handOverKick(index)) {
    kick = *k;
    ring.kick_handed_over = true;
    ring.handed_kick = kick;
  } else {
    ring.own_kick.emplace(EMBER_TRY(EventFd::create()));
    kick = ring.own_kick->fd();
  }
  int call = EMBER_TRY(host.handOverInterrupt(index));
  ring.interrupt_handed_over = true;
  EMBER_TRY(backend.setVringKick(index, kick));
  EMBER_TRY(backend.setVringCall(index, call));
  return {};
}

void VhostRings::stopAll(VhostBackend* backend, VirtioDeviceHost& host, std::string_view device) {
  for (uint16_t i = 0; i < rings_.size(); ++i) {
    Ring& ring = rings_[i];
    if (!ring.started) continue;
    if (backend != nullptr) {
      // The backend touches the ring no more once it has answered.
      if (auto base = backend->getVringBase(i); !base) {
        log::warn("{}: {}", device, base.error().message);
      } else if (ring.kick_handed_over) {
        uint64_t seen = 0;
        (void)!::read(ring.handed_kick, &seen, sizeof seen);  // non-blocking: 0 left is EAGAIN
      }
    }
    if (ring.kick_handed_over) host.takeBackKick(i);
    if (ring.interrupt_handed_over) host.takeBackInterrupt(i);
    ring = Ring{};
  }
}

bool VhostRings::forwardKick(uint16_t index) const {
  if (index >= rings_.size() || !rings_[index].own_kick) return false;
  rings_[index].own_kick->signal();
  return true;
}

}  // namespace ember::virtio
