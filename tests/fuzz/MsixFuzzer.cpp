// Fuzzes the MSI-X table and PBA: table and PBA accesses of every size and alignment, control
// (enable, function mask) writes and vector notifications, checking the invariant that a message
// is only sent for a vector that exists and whose route was programmed. Routes are programmed
// only when an entry's message changes, so any earlier programming of that vector counts.
#include <array>
#include <cstdlib>

#include "FuzzInput.h"
#include "pci/Msix.h"

using namespace ember;

namespace {
class CheckingSink : public pci::MsiSink {
 public:
  void setRoute(uint16_t vector, uint64_t, uint32_t) override {
    if (state == nullptr || vector >= state->size()) abort();
    routed[vector] = true;
  }
  void fire(uint16_t vector) override {
    if (state == nullptr || vector >= state->size() || !routed[vector]) abort();
  }
  // Direct delivery is only ever asked for a routed vector of the table.
  Result<void> attachIrqfd(uint16_t vector, int) override {
    if (state == nullptr || vector >= state->size() || !routed[vector]) abort();
    return {};
  }
  void detachIrqfd(uint16_t vector, int) override {
    if (state == nullptr || vector >= state->size()) abort();
  }
  std::array<bool, 64> routed{};
  const pci::MsixState* state = nullptr;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  uint16_t vectors = static_cast<uint16_t>(1 + in.take<uint8_t>() % 64);
  CheckingSink sink;
  pci::MsixState msix(vectors, sink);
  sink.state = &msix;
  pci::MsixBarRegion region(msix, 0, 0x800);
  while (!in.empty()) {
    uint8_t op = in.take<uint8_t>();
    uint8_t width = static_cast<uint8_t>(1 + in.take<uint8_t>() % 8);
    uint8_t buf[8];
    uint64_t value = in.take<uint64_t>();
    std::memcpy(buf, &value, 8);
    uint64_t offset = in.take<uint16_t>() % 0x1000;
    switch (op % 4) {
      case 0:
        region.write(offset, std::span<const uint8_t>(buf, width));
        break;
      case 1:
        region.read(offset, std::span<uint8_t>(buf, width));
        break;
      case 2:
        msix.writeControl(static_cast<uint16_t>(value));
        break;
      case 3:
        (void)msix.notify(static_cast<uint16_t>(value % 80));
        break;
    }
  }
  return 0;
}
