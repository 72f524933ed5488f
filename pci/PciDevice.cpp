// Type-0 header set-up and BAR register semantics (PCI Local Bus 3.0, 6.2.5).
#include "pci/PciDevice.h"

namespace ember::pci {

PciDevice::PciDevice(std::string name, const PciIds& ids) : name_(std::move(name)) {
  config_.set16(cfg::kVendorId, ids.vendor);
  config_.set16(cfg::kDeviceId, ids.device);
  // Revision ID (0x08) and the three Class Code bytes above it (programming interface,
  // sub-class, base class; section 6.2.1) make up one dword.
  config_.set32(cfg::kRevision, (ids.class_code << 8) | ids.revision);
  config_.set8(cfg::kHeaderType, 0x00);
  config_.set16(cfg::kSubsystemVendorId, ids.subsystem_vendor);
  config_.set16(cfg::kSubsystemId, ids.subsystem);
  // Command: I/O and memory decode, bus master, SERR, parity response, INTx disable.
  config_.setWritable(cfg::kCommand, 2,
                      cfg::kCommandIo | cfg::kCommandMemory | cfg::kCommandBusMaster | (1 << 6) |
                          (1 << 8) | cfg::kCommandIntxDisable);
  // Status: the error bits 15-11 and 8 are write-one-to-clear.
  config_.setWriteOneToClear(cfg::kStatus, 2, 0xf900);
  config_.setWritable(cfg::kInterruptLine, 1, 0xff);
}

uint32_t PciDevice::configRead(uint16_t offset, uint8_t size) {
  return config_.read(offset, size);
}

void PciDevice::configWrite(uint16_t offset, uint8_t size, uint32_t value) {
  uint16_t old_command = command();
  config_.write(offset, size, value);
  if (touches(offset, size, cfg::kCommand, 2) && command() != old_command) {
    commandChanged(old_command, command());
  }
}

void PciDevice::setBar(int index, BarSpec spec) {
  uint16_t reg = static_cast<uint16_t>(cfg::kBar0 + 4 * index);
  switch (spec.kind) {
    case BarKind::None:
      break;
    case BarKind::Io:
      config_.set32(reg, 0x1);
      config_.setWritable(reg, 4, static_cast<uint32_t>(~(spec.size - 1)) & ~0x3u);
      break;
    case BarKind::Memory32:
      config_.set32(reg, spec.prefetchable ? 0x8 : 0x0);
      config_.setWritable(reg, 4, static_cast<uint32_t>(~(spec.size - 1)) & ~0xfu);
      break;
    case BarKind::Memory64:
      config_.set32(reg, 0x4 | (spec.prefetchable ? 0x8 : 0x0));
      config_.setWritable(reg, 4, static_cast<uint32_t>(~(spec.size - 1)) & ~0xfu);
      config_.set32(reg + 4, 0);
      config_.setWritable(reg + 4, 4, static_cast<uint32_t>(~(spec.size - 1) >> 32));
      break;
  }
  bars_[index] = std::move(spec);
}

uint64_t PciDevice::barAddress(int index) const {
  uint16_t reg = static_cast<uint16_t>(cfg::kBar0 + 4 * index);
  switch (bars_[index].kind) {
    case BarKind::None:
      return 0;
    case BarKind::Io:
      return config_.get32(reg) & ~0x3u;
    case BarKind::Memory32:
      return config_.get32(reg) & ~0xfu;
    case BarKind::Memory64:
      return (config_.get32(reg) & ~0xfu) | (static_cast<uint64_t>(config_.get32(reg + 4)) << 32);
  }
  return 0;
}

void PciDevice::setBarAddress(int index, uint64_t address) {
  uint16_t reg = static_cast<uint16_t>(cfg::kBar0 + 4 * index);
  uint32_t low_bits = config_.get32(reg) & (bars_[index].kind == BarKind::Io ? 0x3u : 0xfu);
  config_.set32(reg, static_cast<uint32_t>(address) | low_bits);
  if (bars_[index].kind == BarKind::Memory64) {
    config_.set32(reg + 4, static_cast<uint32_t>(address >> 32));
  }
}

}  // namespace ember::pci
