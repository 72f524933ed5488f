// Guest-requested exit with a status.
#include "devices/DebugExit.h"

#include <algorithm>

namespace ember::devices {

void DebugExit::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void DebugExit::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) {
    return;
  }
  uint32_t value = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) {
    value |= static_cast<uint32_t>(data[i]) << (8 * i);
  }
  control_.requestExit(ExitRequest::debugExit(value));
}

}  // namespace ember::devices
