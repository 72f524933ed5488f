// The bus-master gate.
#include "virtio/BusMasterGate.h"

namespace ember::virtio {

std::vector<uint16_t> BusMasterGate::setBusMaster(bool on) {
  std::vector<uint16_t> due;
  bus_master_ = on;
  if (!on) {
    return due;
  }
  bus_master_ever_ = true;
  for (uint16_t q = 0; q < deferred_.size(); ++q) {
    if (deferred_[q]) {
      deferred_[q] = false;
      due.push_back(q);
    }
  }
  return due;
}

}  // namespace ember::virtio
