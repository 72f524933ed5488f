// Masked configuration-space access and capability-list construction. Registers are
// little-endian whatever the host (PCI Local Bus 3.0, section 6.1).
#include "pci/PciConfigSpace.h"

#include <algorithm>

#include "kvm/LittleEndian.h"

namespace ember::pci {

namespace {
// The bytes of `space` a guest access of `size` at `offset` covers: at most a dword, and none
// past the end of the space.
template <typename Space>
auto accessedBytes(Space& space, uint16_t offset, uint8_t size) {
  size_t start = std::min<size_t>(offset, cfg::kSize);
  return std::span(space).subspan(start,
                                  std::min<size_t>({size, sizeof(uint32_t), cfg::kSize - start}));
}
}  // namespace

uint32_t PciConfigSpace::read(uint16_t offset, uint8_t size) const {
  return loadLe<uint32_t>(accessedBytes(data_, offset, size));
}

void PciConfigSpace::write(uint16_t offset, uint8_t size, uint32_t value) {
  // Bit by bit: a writable bit takes the written value, a write-1-to-clear bit written as 1
  // clears, every other bit keeps its value.
  auto bytes = accessedBytes(data_, offset, size);
  uint32_t writable = loadLe<uint32_t>(accessedBytes(wmask_, offset, size));
  uint32_t clear = value & loadLe<uint32_t>(accessedBytes(w1c_, offset, size));
  uint32_t old = loadLe<uint32_t>(bytes);
  storeLe(bytes, ((old & ~writable) | (value & writable)) & ~clear);
}

uint16_t PciConfigSpace::get16(uint16_t offset) const {
  return loadLe<uint16_t>(std::span(data_).subspan(offset, 2));
}

uint32_t PciConfigSpace::get32(uint16_t offset) const {
  return loadLe<uint32_t>(std::span(data_).subspan(offset, 4));
}

void PciConfigSpace::set16(uint16_t offset, uint16_t v) {
  storeLe(std::span(data_).subspan(offset, 2), v);
}

void PciConfigSpace::set32(uint16_t offset, uint32_t v) {
  storeLe(std::span(data_).subspan(offset, 4), v);
}

void PciConfigSpace::setWritable(uint16_t offset, uint8_t size, uint32_t mask) {
  storeLe(std::span(wmask_).subspan(offset, size), mask);
}

void PciConfigSpace::setWriteOneToClear(uint16_t offset, uint8_t size, uint32_t mask) {
  storeLe(std::span(w1c_).subspan(offset, size), mask);
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
