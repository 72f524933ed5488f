// Whether a device may touch guest memory, by the PCI command register's Bus Master Enable bit
// (PCI 3.0, 6.2.2), and the kicks that wait while it may not (hostile-guest case 26: a driver
// that turns bus mastering off while DRIVER_OK gets no DMA until it turns it back on). A driver
// that never turned bus mastering on at all is allowed DMA: such drivers historically worked.
// Not thread-safe: the transport calls it under its lock.
#pragma once

#include <cstdint>
#include <vector>

namespace ember::virtio {

class BusMasterGate {
 public:
  explicit BusMasterGate(uint16_t queues) : deferred_(queues, false) {}

  bool open() const { return bus_master_ || !bus_master_ever_; }
  // The Bus Master Enable bit was written. Returns the queues whose kicks waited for it, now due
  // (only when it opened).
  std::vector<uint16_t> setBusMaster(bool on);
  // A kick while the gate is closed: remembered for when it opens (a queue the device does not
  // have is ignored).
  void defer(uint16_t queue) {
    if (queue < deferred_.size()) deferred_[queue] = true;
  }
  // A virtio reset forgets waiting kicks (the bus-master history is PCI state and stays).
  void forgetDeferred() { deferred_.assign(deferred_.size(), false); }

 private:
  bool bus_master_ = false;
  bool bus_master_ever_ = false;
  std::vector<bool> deferred_;
};

}  // namespace ember::virtio
