// Shared helpers for device models.
#include "virtio/VirtioDevice.h"

namespace ember::virtio {

void readConfigBytes(std::span<const uint8_t> image, uint32_t offset, std::span<uint8_t> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t at = static_cast<uint64_t>(offset) + i;
    out[i] = at < image.size() ? image[at] : 0;
  }
}

Result<QueuePositions> VirtioDevice::saveState(StateWriter& /*w*/) {
  return makeError(Errc::Unsupported, "{} cannot be saved in a snapshot", name());
}

void VirtioDevice::loadState(StateReader& /*r*/) {
  // Nothing of its own: the reader's finish() refuses bytes that are there anyway.
}

}  // namespace ember::virtio
