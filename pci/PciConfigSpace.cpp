// Masked configuration-space access and capability-list construction.
#include "pci/PciConfigSpace.h"

namespace ember::pci {

uint32_t PciConfigSpace::read(uint16_t offset, uint8_t size) const {
  uint32_t v = 0;
  for (uint8_t i = 0; i < size && offset + i < cfg::kSize; ++i) {
    v |= static_cast<uint32_t>(data_[offset + i]) << (8 * i);
  }
  return v;
}

void PciConfigSpace::write(uint16_t offset, uint8_t size, uint32_t value) {
  for (uint8_t i = 0; i < size && offset + i < cfg::kSize; ++i) {
    uint8_t b = static_cast<uint8_t>(value >> (8 * i));
    uint16_t o = offset + i;
    uint8_t cleared = b & w1c_[o];
    data_[o] = static_cast<uint8_t>((data_[o] & ~wmask_[o]) | (b & wmask_[o]));
    data_[o] = static_cast<uint8_t>(data_[o] & ~cleared);
  }
}

uint16_t PciConfigSpace::get16(uint16_t offset) const {
  return static_cast<uint16_t>(data_[offset] | (data_[offset + 1] << 8));
}

uint32_t PciConfigSpace::get32(uint16_t offset) const {
  return static_cast<uint32_t>(get16(offset)) | (static_cast<uint32_t>(get16(offset + 2)) << 16);
}

void PciConfigSpace::set16(uint16_t offset, uint16_t v) {
  data_[offset] = static_cast<uint8_t>(v);
  data_[offset + 1] = static_cast<uint8_t>(v >> 8);
}

void PciConfigSpace::set32(uint16_t offset, uint32_t v) {
  set16(offset, static_cast<uint16_t>(v));
  set16(offset + 2, static_cast<uint16_t>(v >> 16));
}

void PciConfigSpace::setWritable(uint16_t offset, uint8_t size, uint32_t mask) {
  for (uint8_t i = 0; i < size; ++i) {
    wmask_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
  }
}

void PciConfigSpace::setWriteOneToClear(uint16_t offset, uint8_t size, uint32_t mask) {
  for (uint8_t i = 0; i < size; ++i) {
    w1c_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
  }
}

uint8_t PciConfigSpace::addCapability(uint8_t id, std::span<const uint8_t> body) {
  size_t len = 2 + body.size();
  size_t aligned = (len + 3) & ~size_t{3};
  if (next_cap_ == 0 || next_cap_ + aligned > cfg::kSize) {
    return 0;
  }
  uint8_t at = next_cap_;
  data_[at] = id;
  data_[at + 1] = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    data_[at + 2 + i] = body[i];
  }
  if (last_cap_ == 0) {
    data_[cfg::kCapabilitiesPtr] = at;
    set16(cfg::kStatus, get16(cfg::kStatus) | cfg::kStatusCapList);
  } else {
    data_[last_cap_ + 1] = at;
  }
  last_cap_ = at;
  next_cap_ = static_cast<uint8_t>(at + aligned < cfg::kSize ? at + aligned : 0);
  return at;
}

}  // namespace ember::pci
