// VM-level KVM ioctls.
#include "kvm/Vm.h"

#include <sys/ioctl.h>

#include <vector>

#include "kvm/KvmAbi.h"

namespace ember::kvm {

Result<std::unique_ptr<Vm>> Vm::create(const KvmSystem& kvm) {
  std::unique_ptr<Vm> vm(new Vm());  // private constructor
  vm->kvm_ = &kvm;
  int fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, 0);
  if (fd < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_CREATE_VM");
  }
  vm->fd_.reset(fd);
  int gsis = kvm.checkExtension(KVM_CAP_IRQ_ROUTING);
  vm->max_gsi_ = gsis > 0 ? static_cast<uint32_t>(gsis) : kIoapicPins;
  return vm;
}

Result<void> Vm::setUpIrqchip(uint64_t tss_addr, uint64_t identity_map_addr) {
  if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, tss_addr) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_SET_TSS_ADDR");
  }
  uint64_t id_map = identity_map_addr;
  if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &id_map) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_SET_IDENTITY_MAP_ADDR");
  }
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_CREATE_IRQCHIP");
  }
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &pit) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_CREATE_PIT2");
  }
  std::lock_guard lock(routes_mutex_);
  return commitRoutesLocked();
}

Result<void> Vm::setMemorySlot(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = guest_addr;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);  // KVM takes the host VA as u64
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return Error::fromErrno(
        Errc::Kvm, fmt::format("KVM_SET_USER_MEMORY_REGION slot {} at {:#x}", slot, guest_addr));
  }
  return {};
}

Result<void> Vm::setIrqLine(uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &l) < 0) {
    return Error::fromErrno(Errc::Kvm, fmt::format("KVM_IRQ_LINE {}", irq));
  }
  return {};
}

namespace {
kvm_ioeventfd toIoeventfd(const IoEventAddress& where, int event_fd) {
  kvm_ioeventfd io{};
  io.addr = where.addr;
  io.len = where.len;
  io.fd = event_fd;
  if (where.pio) {
    io.flags |= KVM_IOEVENTFD_FLAG_PIO;
  }
  if (where.datamatch) {
    io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    io.datamatch = *where.datamatch;
  }
  return io;
}
}  // namespace

Result<void> Vm::addIoEvent(const IoEventAddress& where, int event_fd) {
  kvm_ioeventfd io = toIoeventfd(where, event_fd);
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) {
    return Error::fromErrno(
        Errc::Kvm, fmt::format("KVM_IOEVENTFD {} {:#x}/{}", where.pio ? "port" : "mmio", where.addr,
                               where.len));
  }
  return {};
}

Result<void> Vm::removeIoEvent(const IoEventAddress& where, int event_fd) {
  kvm_ioeventfd io = toIoeventfd(where, event_fd);
  io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) {
    return Error::fromErrno(Errc::Kvm, fmt::format("KVM_IOEVENTFD deassign {:#x}", where.addr));
  }
  return {};
}

Result<void> Vm::addIrqfd(uint32_t gsi, int event_fd) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(event_fd);
  irqfd.gsi = gsi;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
    return Error::fromErrno(Errc::Kvm, fmt::format("KVM_IRQFD gsi {}", gsi));
  }
  return {};
}

Result<void> Vm::removeIrqfd(uint32_t gsi, int event_fd) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(event_fd);
  irqfd.gsi = gsi;
  irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
    return Error::fromErrno(Errc::Kvm, fmt::format("KVM_IRQFD deassign gsi {}", gsi));
  }
  return {};
}

Result<uint32_t> Vm::allocateMsiGsi() {
  std::lock_guard lock(routes_mutex_);
  for (uint32_t n = 0; n < max_gsi_; ++n) {
    uint32_t gsi = next_gsi_;
    next_gsi_ = next_gsi_ + 1 >= max_gsi_ ? kIoapicPins : next_gsi_ + 1;
    if (!allocated_gsis_.contains(gsi)) {
      allocated_gsis_[gsi] = true;
      return gsi;
    }
  }
  return makeError(Errc::Busy, "all {} KVM GSIs are in use", max_gsi_);
}

void Vm::releaseMsiGsi(uint32_t gsi) {
  std::lock_guard lock(routes_mutex_);
  allocated_gsis_.erase(gsi);
  if (msi_routes_.erase(gsi) > 0) {
    (void)commitRoutesLocked();
  }
}

Result<void> Vm::setMsiRoute(uint32_t gsi, uint64_t address, uint32_t data) {
  std::lock_guard lock(routes_mutex_);
  kvm_irq_routing_msi msi{};
  msi.address_lo = static_cast<uint32_t>(address);
  msi.address_hi = static_cast<uint32_t>(address >> 32);
  msi.data = data;
  auto it = msi_routes_.find(gsi);
  if (it != msi_routes_.end() && it->second.address_lo == msi.address_lo &&
      it->second.address_hi == msi.address_hi && it->second.data == msi.data) {
    return {};  // unchanged: skip the table rebuild
  }
  msi_routes_[gsi] = msi;
  return commitRoutesLocked();
}

Result<void> Vm::clearMsiRoute(uint32_t gsi) {
  std::lock_guard lock(routes_mutex_);
  if (msi_routes_.erase(gsi) == 0) {
    return {};
  }
  return commitRoutesLocked();
}

Result<void> Vm::commitRoutesLocked() {
  // The IOAPIC pins 0-23 and the PIC's 0-15 keep their default irqchip routes; KVM replaces the
  // whole table on every KVM_SET_GSI_ROUTING, so they are resubmitted each time.
  std::vector<kvm_irq_routing_entry> entries;
  for (uint32_t pin = 0; pin < kIoapicPins; ++pin) {
    kvm_irq_routing_entry e{};
    e.gsi = pin;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    e.u.irqchip.pin = pin;
    entries.push_back(e);
    if (pin < 16 && pin != 2) {
      e.u.irqchip.irqchip = pin < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      e.u.irqchip.pin = pin % 8;
      entries.push_back(e);
    }
  }
  for (const auto& [gsi, msi] : msi_routes_) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_MSI;
    e.u.msi = msi;
    entries.push_back(e);
  }
  abi::FlexBuffer<kvm_irq_routing_entry> table{std::span<const kvm_irq_routing_entry>(entries)};
  if (::ioctl(fd_.get(), abi::kSetGsiRouting, table.data()) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_SET_GSI_ROUTING");
  }
  return {};
}

Result<void> Vm::signalMsi(uint64_t address, uint32_t data) {
  kvm_msi msi{};
  msi.address_lo = static_cast<uint32_t>(address);
  msi.address_hi = static_cast<uint32_t>(address >> 32);
  msi.data = data;
  if (::ioctl(fd_.get(), KVM_SIGNAL_MSI, &msi) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_SIGNAL_MSI");
  }
  return {};
}

}  // namespace ember::kvm

#include "kvm/Log.h"

namespace ember::kvm {

void KvmIrqLine::setLevel(bool asserted) {
  if (auto r = vm_.setIrqLine(irq_, asserted); !r) {
    log::warn("irq {}: {}", irq_, r.error().message);
  }
}

}  // namespace ember::kvm
