// The pvpanic event register.
#include "devices/PvPanic.h"

#include <algorithm>

#include "kvm/Log.h"

namespace ember::devices {

class PvPanic::EventRegister : public BusDevice {
 public:
  explicit EventRegister(PvPanic& device) : device_(device) {}
  void read(uint64_t offset, std::span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0);
    if (offset == 0) {
      data[0] = kEvents;  // the events this device recognises
    }
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset == 0 && !data.empty()) {
      device_.write(data[0]);
    }
  }

 private:
  PvPanic& device_;
};

PvPanic::PvPanic(VmControl& control)
    : PciDevice("pvpanic-pci",
                pci::PciIds{kVendorId, kDeviceId, kVendorId, kDeviceId, 1, kClassCode}),
      control_(control) {
  setBar(kBar, pci::BarSpec{pci::BarKind::Memory32, kBarSize, false,
                            std::make_shared<EventRegister>(*this)});
}

void PvPanic::write(uint8_t events) {
  if (events & kPanicked) {
    control_.requestExit(ExitRequest::guestPanic());
    return;
  }
  if ((events & kCrashLoaded) && !crash_loaded_reported_.exchange(true)) {
    log::warn("pvpanic: the guest kernel panicked and handles it itself (crash kernel loaded)");
  }
}

}  // namespace ember::devices
