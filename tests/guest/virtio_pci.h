// The virtio-over-PCI transport, driver side, with both faces behind one interface (virtio 1.2
// section 4.1): the modern face through the vendor-specific capabilities (4.1.4: common
// configuration, notifications, ISR status, device configuration, in memory BARs) and the legacy
// face through I/O BAR0 (4.1.4.10: host/guest features, queue PFN/size/select/notify, status,
// ISR, the two MSI-X vector registers while MSI-X is enabled, then device configuration;
// 4.1.5.1.3.1 for its queues). Which face the tests drive comes from the command line:
// `virtio=legacy` or `virtio=modern` (default).
#pragma once

#include "msix.h"
#include "virtqueue.h"

namespace guest {

enum class VirtioFace : uint8_t { Modern, Legacy };
VirtioFace virtio_face();  // from the command line
const char* face_name(VirtioFace face);

// Virtio device types (5.x) and the PCI ID rules of 4.1.2: vendor 0x1af4, device 0x1040 + type
// (modern), or 0x1000-0x103f (transitional) with the type in the subsystem device ID.
constexpr uint16_t kVirtioVendor = 0x1af4;
constexpr uint16_t kVirtioTypeBlk = 2, kVirtioTypeConsole = 3, kVirtioTypeRng = 4;
uint16_t virtio_type(const PciFunction& f);  // 0 when `f` is not a virtio device
const char* virtio_type_name(uint16_t type);

// Device status bits (2.1) and transport feature bits (6).
namespace vstatus {
constexpr uint8_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64,
                  kFailed = 128;
}
constexpr unsigned kFeatIndirectDesc = 28, kFeatEventIdx = 29, kFeatVersion1 = 32,
                   kFeatAccessPlatform = 33;

class VirtioPci {
 public:
  static constexpr uint16_t kNoVector = 0xffff;
  static constexpr uint16_t kMaxQueues = 66;  // a 32-port virtio-console: 2 x (32 + 1)

  // Finds the registers of `face` (and the MSI-X capability), enables decoding and bus
  // mastering. The BARs must already have their final addresses.
  bool attach(PciFunction* f, VirtioFace face, char* why, size_t n);
  PciFunction* function() const { return f_; }
  VirtioFace face() const { return face_; }
  Msix& msix() { return msix_; }

  uint8_t status() const;
  void set_status(uint8_t s);
  uint64_t device_features() const;  // 32 bits on the legacy face
  void set_driver_features(uint64_t features);
  uint16_t num_queues() const;  // legacy: the queues whose size reads non-zero
  uint16_t queue_max_size(uint16_t q) const;
  // Programs queue `q` with `vq`'s rings (and size, modern face) and MSI-X vector `vector`
  // (kNoVector: none), then enables it (modern) or activates it by PFN (legacy).
  bool setup_queue(uint16_t q, const Virtqueue& vq, uint16_t vector, char* why, size_t n);
  uint16_t config_vector(uint16_t vector);  // writes, returns the read-back value
  void notify(uint16_t q) const;
  // Where notify(q) writes on the modern face (0 before setup_queue, and on the legacy face).
  uint64_t notify_addr(uint16_t q) const { return q < kMaxQueues ? queue_notify_[q] : 0; }
  uint8_t isr() const;        // reading clears it (4.1.4.5)
  void enable_msix(bool on);  // also moves the legacy device configuration (20 or 24)
  bool msix_enabled() const { return msix_on_; }

  // Device-specific configuration; multi-word reads repeat until consistent (4.1.4.3
  // config_generation; legacy: until two reads agree).
  uint8_t cfg8(uint32_t off) const;
  uint16_t cfg16(uint32_t off) const;
  uint32_t cfg32(uint32_t off) const;
  uint64_t cfg64(uint32_t off) const;

  // Registers behind the relocated BARs, for the pci-enum check: the legacy queue-0 size and
  // the modern num_queues, read at `io_base` / `common` (normally the current addresses).
  uint16_t legacy_queue0_size(uint16_t io_base) const;
  uint64_t common_cfg() const { return common_; }
  uint16_t io_base() const { return io_; }

 private:
  uint8_t gen() const;
  PciFunction* f_ = nullptr;
  VirtioFace face_ = VirtioFace::Modern;
  Msix msix_;
  bool msix_on_ = false;
  uint16_t io_ = 0;                                          // legacy
  uint64_t common_ = 0, notify_ = 0, isr_ = 0, device_ = 0;  // modern
  uint32_t notify_mult_ = 0, notify_len_ = 0, device_len_ = 0;
  uint64_t queue_notify_[kMaxQueues] = {};
};

}  // namespace guest
