// Fuzzes PCI configuration and device register access as a guest would do it: any sequence of
// port I/O on 0xcf8-0xcff (mechanism #1), ECAM reads and writes, and accesses to wherever the
// guest moved the BARs (the legacy virtio I/O BAR, the MSI-X table and PBA, the modern virtio
// registers), against a PCI bus holding a virtio-rng and a virtio-console transport.
// Properties: no crash, no out-of-bounds access, no deadlock.
#include <memory>

#include "FuzzInput.h"
#include "devices/VirtioConsole.h"
#include "devices/VirtioRng.h"
#include "kvm/Bus.h"
#include "kvm/GuestMemory.h"
#include "pci/Msix.h"
#include "pci/PciBus.h"
#include "virtio/VirtioPciTransport.h"

using namespace ember;

namespace {
class CountingSink : public pci::MsiSink {
 public:
  void setRoute(uint16_t, uint64_t, uint32_t) override {}
  void fire(uint16_t) override { ++fired; }
  Result<void> attachIrqfd(uint16_t, int) override { return {}; }
  void detachIrqfd(uint16_t, int) override {}
  uint64_t fired = 0;
};

struct World {
  World() {
    GuestRegionSpec specs[] = {{GuestAddress(0), 0x100000}};
    mem = std::move(GuestMemory::create(specs)).value();
    bus =
        std::make_unique<pci::PciBus>(pio, mmio, [](uint64_t a, uint64_t) { return a < 0x100000; });
    (void)pio.insert(0xcf8, 8, bus->configPorts());
    (void)mmio.insert(0xe0000000, 1 << 20, bus->ecam());
    virtio::TransportEnvironment env{nullptr, nullptr, &mem};
    (void)bus->addDevice(std::make_shared<virtio::VirtioPciTransport>(
        std::make_unique<devices::VirtioRng>(), env, std::make_unique<CountingSink>(),
        virtio::TransportOptions{false}));
    (void)bus->addDevice(std::make_shared<virtio::VirtioPciTransport>(
        std::make_unique<devices::VirtioConsole>([](std::span<const uint8_t>) {}), env,
        std::make_unique<CountingSink>(), virtio::TransportOptions{false}));
    (void)bus->assignResources(0xc000, 0x4000, 0xc0000000, 0x20000000);
  }
  GuestMemory mem;
  Bus pio{"pio"}, mmio{"mmio"};
  std::unique_ptr<pci::PciBus> bus;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  World w;  // fresh devices per input: results do not depend on earlier inputs
  for (int step = 0; step < 256 && !in.empty(); ++step) {
    uint8_t op = in.take<uint8_t>();
    uint8_t width = static_cast<uint8_t>(1u << (in.take<uint8_t>() % 4));  // 1, 2, 4, 8
    uint8_t buf[8] = {};
    uint64_t value = in.take<uint64_t>();
    std::memcpy(buf, &value, 8);
    std::span<uint8_t> rd(buf, width);
    std::span<const uint8_t> wr(buf, width);
    switch (op % 6) {
      case 0: {  // mechanism #1
        uint16_t port = static_cast<uint16_t>(0xcf8 + in.take<uint8_t>() % 8);
        if (op & 0x80)
          w.pio.write(port, wr);
        else
          w.pio.read(port, rd);
        break;
      }
      case 1: {  // ECAM, bus 0 only (the window is 1 MiB)
        uint64_t off = in.take<uint32_t>() % (1 << 20);
        if (op & 0x80)
          w.mmio.write(0xe0000000 + off, wr);
        else
          w.mmio.read(0xe0000000 + off, rd);
        break;
      }
      case 2: {  // the 32-bit MMIO window, where BARs live
        uint64_t addr = 0xc0000000 + in.take<uint32_t>() % 0x20000000;
        if (op & 0x80)
          w.mmio.write(addr, wr);
        else
          w.mmio.read(addr, rd);
        break;
      }
      case 3: {  // the first pages of the MMIO window (where the BARs start out)
        uint64_t addr = 0xc0000000 + in.take<uint16_t>() % 0x20000;
        if (op & 0x80)
          w.mmio.write(addr, wr);
        else
          w.mmio.read(addr, rd);
        break;
      }
      case 4: {  // the I/O window (legacy virtio BARs)
        uint16_t port = static_cast<uint16_t>(0xc000 + in.take<uint16_t>() % 0x4000);
        if (op & 0x80)
          w.pio.write(port, wr);
        else
          w.pio.read(port, rd);
        break;
      }
      case 5: {  // direct config access with every offset and size
        uint8_t dev = in.take<uint8_t>() % 4;
        uint16_t off = in.take<uint16_t>() % 0x1000;
        uint8_t sz = static_cast<uint8_t>(1 + in.take<uint8_t>() % 4);
        if (op & 0x80)
          w.bus->configWrite(0, dev, 0, off, sz, static_cast<uint32_t>(value));
        else
          (void)w.bus->configRead(0, dev, 0, off, sz);
        break;
      }
    }
  }
  return 0;
}
