// Virtio PCI transport, both faces (virtio 1.2 section 4.1). Modern registers are accessed with
// the width of each field, 64-bit fields as two 32-bit halves, low first (4.1.3.1); legacy
// registers with port I/O at the offsets of 4.1.4.10 (little-endian, the guest's own order).
#include "virtio_pci.h"

namespace guest {

namespace {

bool streq(const char* a, const char* b) {
  size_t n = strlen(b);
  return strlen(a) == n && memcmp(a, b, n) == 0;
}

// 4.1.4.3: the common configuration structure.
namespace common {
constexpr uint32_t kDeviceFeatureSelect = 0x00, kDeviceFeature = 0x04, kDriverFeatureSelect = 0x08,
                   kDriverFeature = 0x0c, kMsixConfig = 0x10, kNumQueues = 0x12,
                   kDeviceStatus = 0x14, kConfigGeneration = 0x15, kQueueSelect = 0x16,
                   kQueueSize = 0x18, kQueueMsixVector = 0x1a, kQueueEnable = 0x1c,
                   kQueueNotifyOff = 0x1e, kQueueDesc = 0x20, kQueueDriver = 0x28,
                   kQueueDevice = 0x30, kSize = 0x38;
}
// 4.1.4.10: the legacy header in BAR0.
namespace legacy {
constexpr uint16_t kHostFeatures = 0, kGuestFeatures = 4, kQueuePfn = 8, kQueueSize = 12,
                   kQueueSelect = 14, kQueueNotify = 16, kStatus = 18, kIsr = 19,
                   kConfigVector = 20, kQueueVector = 22;
}
// 4.1.4: virtio_pci_cap.cfg_type.
constexpr uint8_t kCapCommon = 1, kCapNotify = 2, kCapIsr = 3, kCapDevice = 4;

void write64(uint64_t addr, uint64_t v) {
  mmio_write<uint32_t>(addr, static_cast<uint32_t>(v));
  mmio_write<uint32_t>(addr + 4, static_cast<uint32_t>(v >> 32));
}

}  // namespace

VirtioFace virtio_face() {
  char v[16];
  if (cmdline_get("virtio", v, sizeof v) && streq(v, "legacy")) return VirtioFace::Legacy;
  return VirtioFace::Modern;
}

const char* face_name(VirtioFace face) {
  return face == VirtioFace::Legacy ? "legacy" : "modern";
}

uint16_t virtio_type(const PciFunction& f) {
  if (f.vendor != kVirtioVendor) return 0;
  if (f.device >= 0x1040 && f.device <= 0x107f) return static_cast<uint16_t>(f.device - 0x1040);
  if (f.device >= 0x1000 && f.device <= 0x103f) return f.subsys_id;  // 4.1.2.1
  return 0;
}

const char* virtio_type_name(uint16_t type) {
  switch (type) {
    case kVirtioTypeBlk:
      return "virtio-blk";
    case kVirtioTypeConsole:
      return "virtio-console";
    case kVirtioTypeRng:
      return "virtio-rng";
    default:
      return "virtio";
  }
}

bool VirtioPci::attach(PciFunction* f, VirtioFace face, char* why, size_t n) {
  PciBus& bus = PciBus::get();
  f_ = f;
  face_ = face;
  if (face == VirtioFace::Legacy) {
    // 4.1.5: a transitional device's legacy registers are its I/O BAR0.
    if (f->device >= 0x1040)
      return snprintf(why, n, "a modern-only device has no legacy face"), false;
    if (!f->bar[0].io || f->bar[0].size < 24 || f->bar[0].addr == 0) {
      return snprintf(why, n, "no legacy I/O BAR0"), false;
    }
    io_ = static_cast<uint16_t>(f->bar[0].addr);
  } else {
    // 4.1.4: the first capability of each type with a usable BAR is the one to use.
    for (uint8_t cap = bus.find_capability(*f, pcicfg::kCapVendor); cap != 0;
         cap = bus.find_capability(*f, pcicfg::kCapVendor, cap)) {
      uint8_t len = bus.read8(*f, cap + 2), type = bus.read8(*f, cap + 3),
              bar = bus.read8(*f, cap + 4);
      uint32_t off = bus.read32(*f, cap + 8), length = bus.read32(*f, cap + 12);
      if (len < 16 || bar > 5 || f->bar[bar].size == 0 || f->bar[bar].io || f->bar[bar].addr == 0) {
        continue;
      }
      if (static_cast<uint64_t>(off) + length > f->bar[bar].size) continue;
      uint64_t addr = f->bar[bar].addr + off;
      if (type == kCapCommon && common_ == 0 && length >= common::kSize) {
        common_ = addr;
      } else if (type == kCapNotify && notify_ == 0 && len >= 20) {
        notify_ = addr;
        notify_len_ = length;
        notify_mult_ = bus.read32(*f, cap + 16);
      } else if (type == kCapIsr && isr_ == 0 && length >= 1) {
        isr_ = addr;
      } else if (type == kCapDevice && device_ == 0) {
        device_ = addr;
        device_len_ = length;
      }
      if (length != 0 && !map_identity(addr, length, true)) {
        return snprintf(why, n, "cannot map BAR%u", bar), false;
      }
    }
    if (common_ == 0 || notify_ == 0 || isr_ == 0) {
      return snprintf(why, n, "virtio capabilities missing (common %lx notify %lx isr %lx)",
                      common_, notify_, isr_),
             false;
    }
  }
  if (!msix_.attach(f, why, n)) return false;
  msix_on_ = msix_.enabled();
  bus.update_command(*f, pcicfg::kCmdMaster, 0);
  return true;
}

uint8_t VirtioPci::status() const {
  if (face_ == VirtioFace::Legacy) return inb(io_ + legacy::kStatus);
  return mmio_read<uint8_t>(common_ + common::kDeviceStatus);
}

void VirtioPci::set_status(uint8_t s) {
  if (face_ == VirtioFace::Legacy) return outb(io_ + legacy::kStatus, s);
  mmio_write<uint8_t>(common_ + common::kDeviceStatus, s);
}

uint64_t VirtioPci::device_features() const {
  if (face_ == VirtioFace::Legacy) return inl(io_ + legacy::kHostFeatures);
  mmio_write<uint32_t>(common_ + common::kDeviceFeatureSelect, 0);
  uint64_t lo = mmio_read<uint32_t>(common_ + common::kDeviceFeature);
  mmio_write<uint32_t>(common_ + common::kDeviceFeatureSelect, 1);
  uint64_t hi = mmio_read<uint32_t>(common_ + common::kDeviceFeature);
  return lo | (hi << 32);
}

void VirtioPci::set_driver_features(uint64_t features) {
  if (face_ == VirtioFace::Legacy) {
    return outl(io_ + legacy::kGuestFeatures, static_cast<uint32_t>(features));
  }
  mmio_write<uint32_t>(common_ + common::kDriverFeatureSelect, 0);
  mmio_write<uint32_t>(common_ + common::kDriverFeature, static_cast<uint32_t>(features));
  mmio_write<uint32_t>(common_ + common::kDriverFeatureSelect, 1);
  mmio_write<uint32_t>(common_ + common::kDriverFeature, static_cast<uint32_t>(features >> 32));
}

uint16_t VirtioPci::num_queues() const {
  if (face_ == VirtioFace::Modern) return mmio_read<uint16_t>(common_ + common::kNumQueues);
  uint16_t q = 0;
  while (q < kMaxQueues && queue_max_size(q) != 0) ++q;
  return q;
}

uint16_t VirtioPci::queue_max_size(uint16_t q) const {
  if (face_ == VirtioFace::Legacy) {
    outw(io_ + legacy::kQueueSelect, q);
    return inw(io_ + legacy::kQueueSize);
  }
  mmio_write<uint16_t>(common_ + common::kQueueSelect, q);
  return mmio_read<uint16_t>(common_ + common::kQueueSize);
}

bool VirtioPci::setup_queue(uint16_t q, const Virtqueue& vq, uint16_t vector, char* why, size_t n) {
  if (q >= kMaxQueues) return snprintf(why, n, "queue %u beyond this driver's limit", q), false;
  if (face_ == VirtioFace::Legacy) {
    // 4.1.5.1.3.1 (legacy virtqueue configuration): the size is the device's; the rings are one
    // block laid out as in 2.7.2 with 4096 alignment, given by page frame number.
    outw(io_ + legacy::kQueueSelect, q);
    uint16_t size = inw(io_ + legacy::kQueueSize);
    if (size != vq.size())
      return snprintf(why, n, "queue %u size %u, rings for %u", q, size, vq.size()), false;
    outl(io_ + legacy::kQueuePfn, static_cast<uint32_t>(vq.desc_addr() >> 12));
    if (msix_on_) {
      outw(io_ + legacy::kQueueVector, vector);
      uint16_t back = inw(io_ + legacy::kQueueVector);
      if (back != vector)
        return snprintf(why, n, "queue %u vector reads %x, wrote %x", q, back, vector), false;
    }
    return true;
  }
  // 4.1.5.1.3 (modern virtqueue configuration): size, vector, ring addresses, then enable.
  uint64_t c = common_;
  mmio_write<uint16_t>(c + common::kQueueSelect, q);
  uint16_t max = mmio_read<uint16_t>(c + common::kQueueSize);
  if (max == 0 || vq.size() > max)
    return snprintf(why, n, "queue %u max size %u < %u", q, max, vq.size()), false;
  if (mmio_read<uint16_t>(c + common::kQueueEnable) != 0) {
    return snprintf(why, n, "queue %u already enabled after reset", q), false;
  }
  mmio_write<uint16_t>(c + common::kQueueSize, vq.size());
  if (msix_on_) {
    mmio_write<uint16_t>(c + common::kQueueMsixVector, vector);
    uint16_t back = mmio_read<uint16_t>(c + common::kQueueMsixVector);
    if (back != vector)
      return snprintf(why, n, "queue %u vector reads %x, wrote %x", q, back, vector), false;
  }
  write64(c + common::kQueueDesc, vq.desc_addr());
  write64(c + common::kQueueDriver, vq.avail_addr());
  write64(c + common::kQueueDevice, vq.used_addr());
  uint64_t off =
      static_cast<uint64_t>(mmio_read<uint16_t>(c + common::kQueueNotifyOff)) * notify_mult_;
  if (off + 2 > notify_len_) {
    return snprintf(why, n, "queue %u notify offset %lx beyond the %x-byte area", q, off,
                    notify_len_),
           false;
  }
  queue_notify_[q] = notify_ + off;
  mmio_write<uint16_t>(c + common::kQueueEnable, 1);
  if (mmio_read<uint16_t>(c + common::kQueueEnable) != 1) {
    return snprintf(why, n, "queue %u does not read back enabled", q), false;
  }
  return true;
}

uint16_t VirtioPci::config_vector(uint16_t vector) {
  if (face_ == VirtioFace::Legacy) {
    outw(io_ + legacy::kConfigVector, vector);
    return inw(io_ + legacy::kConfigVector);
  }
  mmio_write<uint16_t>(common_ + common::kMsixConfig, vector);
  return mmio_read<uint16_t>(common_ + common::kMsixConfig);
}

void VirtioPci::notify(uint16_t q) const {
  if (face_ == VirtioFace::Legacy) return outw(io_ + legacy::kQueueNotify, q);
  if (q < kMaxQueues && queue_notify_[q] != 0) mmio_write<uint16_t>(queue_notify_[q], q);
}

uint8_t VirtioPci::isr() const {
  if (face_ == VirtioFace::Legacy) return inb(io_ + legacy::kIsr);
  return mmio_read<uint8_t>(isr_);
}

void VirtioPci::enable_msix(bool on) {
  msix_.enable(on);
  msix_on_ = on;
}

uint8_t VirtioPci::gen() const {
  return face_ == VirtioFace::Legacy ? 0 : mmio_read<uint8_t>(common_ + common::kConfigGeneration);
}

uint8_t VirtioPci::cfg8(uint32_t off) const {
  if (face_ == VirtioFace::Legacy)
    return inb(static_cast<uint16_t>(io_ + (msix_on_ ? 24 : 20) + off));
  return off + 1 <= device_len_ ? mmio_read<uint8_t>(device_ + off) : 0xff;
}

uint16_t VirtioPci::cfg16(uint32_t off) const {
  if (face_ == VirtioFace::Legacy)
    return inw(static_cast<uint16_t>(io_ + (msix_on_ ? 24 : 20) + off));
  return off + 2 <= device_len_ ? mmio_read<uint16_t>(device_ + off) : 0xffff;
}

uint32_t VirtioPci::cfg32(uint32_t off) const {
  if (face_ == VirtioFace::Legacy)
    return inl(static_cast<uint16_t>(io_ + (msix_on_ ? 24 : 20) + off));
  return off + 4 <= device_len_ ? mmio_read<uint32_t>(device_ + off) : 0xffffffff;
}

uint64_t VirtioPci::cfg64(uint32_t off) const {
  uint64_t v = 0, prev = ~0ULL;
  for (int tries = 0; tries < 16; ++tries) {
    uint8_t g = gen();
    v = cfg32(off) | (static_cast<uint64_t>(cfg32(off + 4)) << 32);
    if (face_ == VirtioFace::Modern ? g == gen() : v == prev) break;
    prev = v;
  }
  return v;
}

uint16_t VirtioPci::legacy_queue0_size(uint16_t io_base) const {
  outw(io_base + legacy::kQueueSelect, 0);
  return inw(io_base + legacy::kQueueSize);
}

}  // namespace guest
