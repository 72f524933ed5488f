// The two register layouts of the transitional virtio-pci transport, as decoders over
// DriverState: the legacy header in the I/O BAR (virtio 1.2, 4.1.5.1, VirtioPciLegacy.cpp) and
// the modern common configuration structure (4.1.4.3, VirtioPciModern.cpp). A read builds the
// register's value from the state; a write changes the state and says what else the transport
// must do (a status change to act on, a kick, a vector to re-route). Neither face touches the
// device, the ISR or the interrupt lines: the transport owns those.
#pragma once

#include <cstdint>
#include <string>

#include "virtio/DriverState.h"

namespace ember::virtio {

// What the faces show that the driver does not set.
struct FaceContext {
  uint64_t device_features = 0;
  uint16_t vectors = 0;       // MSI-X table size: a vector at or past it is stored as NO_VECTOR
  bool msix_enabled = false;  // the legacy header has the two vector registers only then
  bool needs_reset = false;   // DEVICE_NEEDS_RESET, shown in the status
  uint8_t config_generation = 0;
};

// What a register write asks of the transport beyond the DriverState change the face made.
struct FaceWrite {
  enum class Action : uint8_t { None, Status, Reset, Notify, QueueVector, ConfigVector };
  Action action = Action::None;
  uint16_t queue = 0;   // Notify: the queue kicked; QueueVector: the queue whose vector changed
  StatusChange status;  // Status: what the status write asks
  std::string warning;  // a rule the driver broke, for the (rate-limited) log
};

// A vector the driver wrote, as stored: NO_VECTOR when it is outside the MSI-X table
// (hostile-guest case 17; checked again when an interrupt is raised).
constexpr uint16_t checkedVector(uint16_t vector, uint16_t vectors) {
  return vector < vectors ? vector : kNoVector;
}

// The legacy header's size: 24 bytes with MSI-X enabled (the two vector registers), else 20;
// the device configuration follows it.
constexpr uint16_t legacyHeaderSize(bool msix_enabled) {
  return msix_enabled ? legacy::kHeaderSizeMsix : legacy::kHeaderSize;
}

// Legacy header registers (offset < legacyHeaderSize), except the ISR: a register is accessed
// only at its own width; anything else reads 0 and writes nothing.
uint32_t readLegacyRegister(const DriverState& s, const FaceContext& c, uint64_t offset,
                            size_t size);
FaceWrite writeLegacyRegister(DriverState& s, const FaceContext& c, uint64_t offset, size_t size,
                              uint32_t value);

// struct virtio_pci_common_cfg (offset < common::kSize): a read of any width at any offset
// returns the structure's bytes there (bytes past its end read 0); a write takes effect only at a
// field's offset and width (or a 64-bit address field's 32-bit halves).
uint64_t readCommonConfig(const DriverState& s, const FaceContext& c, uint64_t offset, size_t size);
FaceWrite writeCommonConfig(DriverState& s, const FaceContext& c, uint64_t offset, size_t size,
                            uint64_t value);

}  // namespace ember::virtio
