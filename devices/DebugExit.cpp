// Guest-requested exit with a status.
#include "devices/DebugExit.h"

#include <algorithm>

#include "kvm/LittleEndian.h"

namespace ember::devices {

void DebugExit::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void DebugExit::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) {
    return;
  }
  // A 1-, 2- or 4-byte write; anything past the first dword is ignored. The status is the low
  // byte (ExitRequest::debugExit).
  control_.requestExit(ExitRequest::debugExit(loadLe<uint32_t>(data)));
}

}  // namespace ember::devices
