// Configuration mechanisms and BAR mapping (PCI Local Bus 3.0 sections 3.2.2.3.2 and 6.2.5;
// PCI Express base 3.0 section 7.2.2 for ECAM).
#include "pci/PciBus.h"

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"

namespace ember::pci {

namespace {
constexpr uint32_t kConfigEnable = 1u << 31;
// CONFIG_ADDRESS bits that hold state: reserved bits 30:24 and 1:0 read as zero.
constexpr uint32_t kConfigAddressBits = 0x80fffffc;
}  // namespace

std::optional<ConfigTarget> decodeConfigAddress(uint32_t config_address, uint8_t data_byte) {
  if (!(config_address & kConfigEnable)) {
    return std::nullopt;
  }
  return ConfigTarget{static_cast<uint8_t>(config_address >> 16),
                      static_cast<uint8_t>((config_address >> 11) & 0x1f),
                      static_cast<uint8_t>((config_address >> 8) & 0x7),
                      static_cast<uint16_t>((config_address & 0xfc) + data_byte)};
}

ConfigTarget decodeEcamOffset(uint64_t offset) {
  return ConfigTarget{
      static_cast<uint8_t>(offset >> 20), static_cast<uint8_t>((offset >> 15) & 0x1f),
      static_cast<uint8_t>((offset >> 12) & 0x7), static_cast<uint16_t>(offset & 0xfff)};
}

// Ports 0xcf8-0xcff. CONFIG_ADDRESS (0xcf8) is decoded only for 32-bit accesses, as on real
// chipsets; a byte write to 0xcf9 is the reset control register; CONFIG_DATA is 0xcfc-0xcff and
// an access of size N at 0xcfc+k reaches register offset (address & 0xfc) + k. What decodes to
// nothing reads as all ones, including the bytes of an access wider than a dword.
class PciBus::ConfigPorts : public BusDevice {
 public:
  explicit ConfigPorts(PciBus& bus) : bus_(bus) {}

  void read(uint64_t offset, std::span<uint8_t> data) override {
    uint32_t value = 0xffffffff;
    if (offset == 0 && data.size() == 4) {
      std::lock_guard lock(mutex_);
      value = address_;
    } else if (auto at = dataTarget(offset)) {
      value = bus_.configRead(at->bus, at->device, at->function, at->offset,
                              static_cast<uint8_t>(data.size()));
    }
    storeLe(data, value, kAllOnes);
  }

  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (data.size() > 4) {
      return;  // no 8-byte port I/O on x86; ignore rather than misdecode
    }
    uint32_t value = loadLe<uint32_t>(data);
    if (offset == 0 && data.size() == 4) {
      std::lock_guard lock(mutex_);
      address_ = value & kConfigAddressBits;
    } else if (offset == 1 && data.size() == 1) {
      // Reset control register: bit 2 requests the reset, bit 1 makes it a hard reset.
      if ((value & 0x04) && bus_.reset_handler_) {
        bus_.reset_handler_();
      }
    } else if (auto at = dataTarget(offset)) {
      bus_.configWrite(at->bus, at->device, at->function, at->offset,
                       static_cast<uint8_t>(data.size()), value);
    }
  }

 private:
  // The register an access at port 0xcf8 + offset reaches through CONFIG_DATA, if any.
  std::optional<ConfigTarget> dataTarget(uint64_t offset) {
    if (offset < 4) {
      return std::nullopt;
    }
    uint32_t address;
    {
      std::lock_guard lock(mutex_);
      address = address_;
    }
    return decodeConfigAddress(address, static_cast<uint8_t>(offset - 4));
  }

  PciBus& bus_;
  std::mutex mutex_;
  uint32_t address_ = 0;
};

// ECAM: accesses of up to a dword; a wider one reads as all ones and writes nothing.
class PciBus::Ecam : public BusDevice {
 public:
  explicit Ecam(PciBus& bus) : bus_(bus) {}

  void read(uint64_t offset, std::span<uint8_t> data) override {
    uint32_t value = 0xffffffff;
    if (data.size() <= 4) {
      ConfigTarget at = decodeEcamOffset(offset);
      value = bus_.configRead(at.bus, at.device, at.function, at.offset,
                              static_cast<uint8_t>(data.size()));
    }
    storeLe(data, value, kAllOnes);
  }

  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (data.size() > 4) {
      return;
    }
    ConfigTarget at = decodeEcamOffset(offset);
    bus_.configWrite(at.bus, at.device, at.function, at.offset, static_cast<uint8_t>(data.size()),
                     loadLe<uint32_t>(data));
  }

 private:
  PciBus& bus_;
};

PciBus::PciBus(Bus& pio, Bus& mmio, RamCheck is_ram)
    : pio_(pio),
      mmio_(mmio),
      is_ram_(std::move(is_ram)),
      config_ports_(std::make_shared<ConfigPorts>(*this)),
      ecam_(std::make_shared<Ecam>(*this)) {
  devices_[0] = std::make_shared<PciHostBridge>();
}

PciBus::~PciBus() {
  std::lock_guard lock(mutex_);
  for (uint8_t slot = 0; slot < kSlots; ++slot) {
    for (int bar = 0; bar < PciDevice::kBarCount; ++bar) {
      unmapLocked(slot, bar);
    }
  }
}

std::shared_ptr<BusDevice> PciBus::configPorts() const {
  return config_ports_;
}
std::shared_ptr<BusDevice> PciBus::ecam() const {
  return ecam_;
}

std::shared_ptr<PciDevice> PciBus::deviceAt(uint8_t slot) const {
  std::lock_guard lock(mutex_);
  return slot < kSlots ? devices_[slot] : nullptr;
}

std::vector<uint8_t> PciBus::occupiedSlots() const {
  std::lock_guard lock(mutex_);
  std::vector<uint8_t> out;
  for (uint8_t slot = 1; slot < kSlots; ++slot) {
    if (devices_[slot]) out.push_back(slot);
  }
  return out;
}

Result<uint8_t> PciBus::addDevice(std::shared_ptr<PciDevice> device) {
  std::lock_guard lock(mutex_);
  for (uint8_t slot = 1; slot < kSlots; ++slot) {
    if (!devices_[slot]) {
      device->setSlot(slot);
      devices_[slot] = std::move(device);
      remapAllLocked();
      return slot;
    }
  }
  return makeError(Errc::Busy, "PCI bus 0 is full ({} slots)", kSlots - 1);
}

Result<void> PciBus::assignResources(uint64_t io_base, uint64_t io_size, uint64_t mmio_base,
                                     uint64_t mmio_size) {
  std::lock_guard lock(mutex_);
  uint64_t io_next = io_base, mmio_next = mmio_base;
  for (uint8_t slot = 1; slot < kSlots; ++slot) {
    auto& dev = devices_[slot];
    if (!dev) {
      continue;
    }
    uint16_t cmd = dev->command();
    for (int i = 0; i < PciDevice::kBarCount; ++i) {
      const BarSpec& bar = dev->bar(i);
      if (bar.kind == BarKind::None) {
        continue;
      }
      uint64_t& next = bar.kind == BarKind::Io ? io_next : mmio_next;
      uint64_t limit = bar.kind == BarKind::Io ? io_base + io_size : mmio_base + mmio_size;
      uint64_t addr = (next + bar.size - 1) & ~(bar.size - 1);
      if (addr + bar.size > limit) {
        return makeError(Errc::OutOfRange, "PCI {} window is full: cannot place BAR {} of {}",
                         bar.kind == BarKind::Io ? "I/O" : "MMIO", i, dev->name());
      }
      dev->setBarAddress(i, addr);
      next = addr + bar.size;
      cmd |= bar.kind == BarKind::Io ? cfg::kCommandIo : cfg::kCommandMemory;
    }
    dev->setCommand(cmd);
    remapAllLocked();
  }
  return {};
}

uint32_t PciBus::configRead(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset,
                            uint8_t size) {
  uint32_t all_ones = size >= 4 ? 0xffffffffu : ((1u << (8 * size)) - 1);
  if (bus != 0 || function != 0 || device >= kSlots || size == 0 || size > 4) {
    return all_ones;
  }
  // Held across the read: a device's configRead refreshes live fields (MSI-X control, the
  // interrupt status bit) in its configuration space, which writes also touch.
  std::lock_guard lock(mutex_);
  const auto& dev = devices_[device];
  if (!dev) {
    return all_ones;
  }
  if (offset >= cfg::kSize) {
    return 0;  // PCIe extended space (ECAM only): no extended capabilities
  }
  if (offset + size > cfg::kSize) {
    return all_ones;
  }
  return dev->configRead(offset, size);
}

void PciBus::configWrite(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset,
                         uint8_t size, uint32_t value) {
  if (bus != 0 || function != 0 || device >= kSlots || size == 0 || size > 4 ||
      offset + size > cfg::kSize) {
    return;
  }
  std::lock_guard lock(mutex_);
  auto dev = devices_[device];
  if (!dev || device == 0) {
    return;  // the host bridge has nothing writable that matters
  }
  dev->configWrite(offset, size, value);
  if (touches(offset, size, cfg::kCommand, 2) || touches(offset, size, cfg::kBar0, 24)) {
    remapAllLocked();
  }
}

Result<void> PciBus::saveDevice(uint8_t slot, StateWriter& w) const {
  std::lock_guard lock(mutex_);
  auto dev = slot < kSlots ? devices_[slot] : nullptr;
  if (!dev) return makeError(Errc::NotFound, "no PCI device in slot {}", slot);
  w.u32(dev->configRead(cfg::kVendorId, 4));  // vendor and device ID: which device it is
  for (int bar = 0; bar < PciDevice::kBarCount; ++bar) {
    w.u32(dev->configRead(static_cast<uint16_t>(cfg::kBar0 + 4 * bar), 4));
  }
  w.u16(dev->command());
  w.u8(static_cast<uint8_t>(dev->configRead(cfg::kInterruptLine, 1)));
  return dev->saveState(w);
}

Result<void> PciBus::loadDevice(uint8_t slot, StateReader& r) {
  std::lock_guard lock(mutex_);
  auto dev = slot < kSlots ? devices_[slot] : nullptr;
  if (!dev) return makeError(Errc::NotFound, "no PCI device in slot {}", slot);
  uint32_t ids = r.u32("vendor and device ID");
  std::array<uint32_t, PciDevice::kBarCount> bars{};
  for (auto& b : bars) b = r.u32("BAR");
  uint16_t command = r.u16("command");
  uint8_t line = r.u8("interrupt line");
  uint32_t here = dev->configRead(cfg::kVendorId, 4);
  if (r.ok() && ids != here) {
    r.fail("vendor and device ID",
           fmt::format("the snapshot has PCI device {:04x}:{:04x} in slot {}, this machine {} "
                       "({:04x}:{:04x})",
                       ids & 0xffff, ids >> 16, slot, dev->name(), here & 0xffff, here >> 16));
  }
  EMBER_TRY(r.status());
  for (int bar = 0; bar < PciDevice::kBarCount; ++bar) {
    dev->configWrite(static_cast<uint16_t>(cfg::kBar0 + 4 * bar), 4, bars[bar]);
  }
  dev->configWrite(cfg::kInterruptLine, 1, line);
  dev->configWrite(cfg::kCommand, 2, command);
  remapAllLocked();
  return dev->loadState(r);
}

void PciBus::unmapLocked(uint8_t slot, int bar) {
  Mapping& m = mappings_[slot][bar];
  if (!m.mapped) {
    return;
  }
  auto& dev = devices_[slot];
  Bus& bus = m.kind == BarKind::Io ? pio_ : mmio_;
  bus.remove(m.base, dev->bar(bar).region.get());
  m.mapped = false;
  dev->barMoved(bar, std::nullopt);
}

bool PciBus::wantsMapping(uint8_t slot, int bar, uint64_t* addr) const {
  const auto& dev = devices_[slot];
  const BarSpec& spec = dev->bar(bar);
  if (spec.kind == BarKind::None || !spec.region) {
    return false;
  }
  bool decode = dev->command() & (spec.kind == BarKind::Io ? cfg::kCommandIo : cfg::kCommandMemory);
  *addr = dev->barAddress(bar);
  return decode && *addr != 0;
}

void PciBus::remapAllLocked() {
  // Pass 1: take down every mapping that no longer matches its BAR, so that pass 2 can place
  // BARs into space that another BAR just left.
  for (uint8_t slot = 1; slot < kSlots; ++slot) {
    if (!devices_[slot]) {
      continue;
    }
    for (int i = 0; i < PciDevice::kBarCount; ++i) {
      uint64_t addr = 0;
      Mapping& m = mappings_[slot][i];
      if (m.mapped && (!wantsMapping(slot, i, &addr) || addr != m.base)) {
        unmapLocked(slot, i);
      }
    }
  }
  // Pass 2: map every BAR that should decode and is not mapped yet.
  for (uint8_t slot = 1; slot < kSlots; ++slot) {
    auto& dev = devices_[slot];
    if (!dev) {
      continue;
    }
    for (int i = 0; i < PciDevice::kBarCount; ++i) {
      uint64_t addr = 0;
      Mapping& m = mappings_[slot][i];
      if (m.mapped || !wantsMapping(slot, i, &addr)) {
        continue;
      }
      const BarSpec& bar = dev->bar(i);
      bool is_io = bar.kind == BarKind::Io;
      uint64_t end = 0;
      bool overflow = __builtin_add_overflow(addr, bar.size, &end);
      std::string problem;
      if (overflow || (is_io && end > 0x10000)) {
        problem = "leaves the address space";
      } else if (!is_io && is_ram_ && is_ram_(addr, bar.size)) {
        problem = "overlaps RAM";
      } else if (auto r = (is_io ? pio_ : mmio_).insert(addr, bar.size, bar.region); !r) {
        problem = r.error().message;
      }
      if (!problem.empty()) {
        if (m.refused_base != addr) {
          log::warn("pci {}: BAR {} at {:#x} (size {:#x}) {}; left unmapped until moved",
                    dev->name(), i, addr, bar.size, problem);
          m.refused_base = addr;
        }
        continue;
      }
      m = Mapping{true, addr, bar.kind, 0};
      dev->barMoved(i, addr);
    }
  }
}

PciHostBridge::PciHostBridge()
    : PciDevice("host-bridge", PciIds{0x1b36, 0x0008, 0x1af4, 0x1100, 0, 0x060000}) {}

}  // namespace ember::pci
