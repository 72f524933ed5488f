// Guest-requested exit with a status.
#include "devices/DebugExit.h"

#include <fmt/format.h>

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
  // A 1-, 2- or 4-byte write; anything past the first dword is ignored.
  uint32_t value = loadLe<uint32_t>(data);
  // Exit statuses are 8 bits; a larger value is reported in full but truncated for exit().
  control_.requestExit(static_cast<int>(value & 0xff),
                       fmt::format("guest wrote {} to the debug-exit port", value));
}

}  // namespace ember::devices
