// The debug-exit port (0xf4, as QEMU's isa-debug-exit): the guest writes a status and ember exits
// with it. The test guest reports its verdict this way.
#pragma once

#include "devices/VmControl.h"
#include "kvm/Bus.h"

namespace ember::devices {

class DebugExit : public BusDevice {
 public:
  static constexpr uint16_t kPort = 0xf4;
  static constexpr uint16_t kSize = 4;

  explicit DebugExit(VmControl& control) : control_(control) {}
  void read(uint64_t, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  VmControl& control_;
};

}  // namespace ember::devices
