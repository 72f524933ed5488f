// pvpanic-pci (QEMU's docs/specs/pvpanic.rst, PCI interface; Linux drivers/misc/pvpanic/
// pvpanic-pci.c): PCI device 1b36:0011 with one memory BAR whose first byte is the event
// register. A read gives the events the device recognises; the guest writes an event when its
// kernel panics:
//   bit 0  PANICKED: the host should act on the panic. ember ends the VM at once, exit status
//          kExitGuestPanic, its log line saying the guest panicked;
//   bit 1  CRASH_LOADED: the guest handles the panic itself (a crash kernel is loaded): ember
//          logs it and the VM goes on.
// Bits the device does not recognise are ignored, as the specification asks.
#pragma once

#include <atomic>
#include <memory>

#include "devices/VmControl.h"
#include "kvm/Bus.h"
#include "pci/PciDevice.h"

namespace ember::devices {

class PvPanic : public pci::PciDevice {
 public:
  static constexpr uint16_t kVendorId = 0x1b36, kDeviceId = 0x0011;  // Red Hat, pvpanic-pci
  static constexpr uint32_t kClassCode = 0x088000;                   // system peripheral, other
  static constexpr uint8_t kPanicked = 1 << 0, kCrashLoaded = 1 << 1;
  static constexpr uint8_t kEvents = kPanicked | kCrashLoaded;
  static constexpr int kBar = 0;
  static constexpr uint64_t kBarSize = 16;  // the register is one byte; a memory BAR is >= 16

  explicit PvPanic(VmControl& control);

 private:
  class EventRegister;
  void write(uint8_t events);

  VmControl& control_;
  std::atomic<bool> crash_loaded_reported_{false};
};

}  // namespace ember::devices
