// Generic virtio device initialisation and queue handling (virtio 1.2 sections 3.1.1, 2.4
// reset, 4.1.5.1.2 MSI-X vector configuration, 4.1.5.1.3 virtqueue configuration).
#include "virtio_device.h"

namespace guest {

namespace {
constinit VirtioDevice g_devices[VirtioDevice::kMaxDevices];
size_t g_count = 0;
bool g_scanned = false;
constexpr uint8_t kFirstVector = 0x50;  // below: exceptions, the timer test's 0x40
}  // namespace

VirtioDevice* VirtioDevice::find(uint16_t type, size_t nth) {
  if (!g_scanned) {
    g_scanned = true;
    PciBus& bus = PciBus::get();
    for (size_t i = 0; i < bus.count() && g_count < kMaxDevices; ++i) {
      uint16_t t = virtio_type(bus.at(i));
      if (t == 0) continue;
      VirtioDevice& d = g_devices[g_count];
      d.attach(&bus.at(i), t, static_cast<uint8_t>(kFirstVector + g_count * (1 + kMaxQueues)));
      ++g_count;
    }
  }
  for (size_t i = 0; i < g_count; ++i) {
    if (g_devices[i].type_ == type && nth-- == 0) return &g_devices[i];
  }
  return nullptr;
}

bool VirtioDevice::attach(PciFunction* f, uint16_t type, uint8_t vector_base) {
  type_ = type;
  vector_base_ = vector_base;
  snprintf(name_, sizeof name_, "%s %02x:%02x.%x", virtio_type_name(type), f->bus, f->dev, f->fn);
  attached_ = t_.attach(f, virtio_face(), attach_error_, sizeof attach_error_);
  if (!attached_) return false;
  // The features offered, read the way the initialisation sequence reads them.
  t_.set_status(0);
  for (int i = 0; i < 1000 && t_.status() != 0; ++i) delay_us(100);
  t_.set_status(vstatus::kAcknowledge);
  t_.set_status(vstatus::kAcknowledge | vstatus::kDriver);
  offered_ = t_.device_features();
  t_.set_status(0);
  return true;
}

bool VirtioDevice::reset(TestResult& r) {
  // 2.4 / 4.1.4.3.2: after writing 0 the driver waits until device_status reads 0.
  t_.set_status(0);
  uint64_t end = rdtsc() + 1000 * tsc_khz();
  uint8_t s;
  while ((s = t_.status()) != 0) {
    if (s == 0xff && t_.face() == VirtioFace::Legacy) {
      return fail(r, "%s: legacy registers at port %x do not answer (status reads ff)", name_,
                  t_.io_base());
    }
    if (rdtsc() > end) return fail(r, "%s: status still %x 1 s after reset", name_, s);
    pause();
  }
  nq_ = 0;
  return true;
}

bool VirtioDevice::begin(uint64_t wanted, bool use_msix, TestResult& r) {
  if (!attached_) return fail(r, "%s: %s", name_, attach_error_);
  if (!reset(r)) return false;
  use_msix_ = use_msix;
  t_.enable_msix(use_msix);  // first: on the legacy face it moves the device configuration
  t_.set_status(vstatus::kAcknowledge);
  t_.set_status(vstatus::kAcknowledge | vstatus::kDriver);
  uint8_t s = t_.status();
  if (s != (vstatus::kAcknowledge | vstatus::kDriver)) {
    return fail(r, "%s: status reads %x after ACKNOWLEDGE|DRIVER", name_, s);
  }
  offered_ = t_.device_features();
  bool modern = t_.face() == VirtioFace::Modern;
  if (modern) {
    if (!((offered_ >> kFeatVersion1) & 1)) {
      return fail(r, "%s: VIRTIO_F_VERSION_1 not offered (features %lx)", name_, offered_);
    }
    wanted |= (1ULL << kFeatVersion1) | (1ULL << kFeatAccessPlatform);
  }
  features_ = offered_ & wanted;
  t_.set_driver_features(features_);
  if (modern) {
    // 3.1.1 steps 5-6: FEATURES_OK, then re-read it to learn whether the subset is accepted.
    t_.set_status(vstatus::kAcknowledge | vstatus::kDriver | vstatus::kFeaturesOk);
    s = t_.status();
    if (!(s & vstatus::kFeaturesOk)) {
      return fail(r, "%s: FEATURES_OK not kept (status %x, features %lx)", name_, s, features_);
    }
  }
  return true;
}

uint8_t VirtioDevice::queue_vector(uint16_t q) const {
  return static_cast<uint8_t>(vector_base_ + queue_entry_[q]);
}

bool VirtioDevice::setup_queues(uint16_t n, uint16_t max_size, uint16_t indirect_max,
                                TestResult& r) {
  char why[96];
  if (n > kMaxQueues) return fail(r, "%s: %u queues asked for", name_, n);
  uint16_t have = t_.num_queues();
  if (have < n) return fail(r, "%s: %u queue(s), %u needed", name_, have, n);
  bool legacy = t_.face() == VirtioFace::Legacy;
  uint16_t entries = use_msix_ ? t_.msix().table_size() : 0;
  if (use_msix_) {
    // 4.1.5.1.2: entry 0 for configuration changes, one entry per queue when the table has
    // room, else the queues share entry 1 (or entry 0 in a one-entry table).
    uint16_t used = entries > n ? static_cast<uint16_t>(n + 1) : entries;
    for (uint16_t e = 0; e < used; ++e) {
      t_.msix().program(e, apic_id(), static_cast<uint8_t>(vector_base_ + e));
    }
    uint16_t back = t_.config_vector(0);
    if (back != 0) return fail(r, "%s: config vector reads %x after writing 0", name_, back);
  }
  for (uint16_t q = 0; q < n; ++q) {
    uint16_t max = t_.queue_max_size(q);
    if (max == 0) return fail(r, "%s: queue %u has size 0", name_, q);
    uint16_t size = max;
    if (!legacy) {
      uint16_t cap = max < max_size ? max : max_size;
      for (size = 1; static_cast<uint32_t>(size) * 2 <= cap;)
        size = static_cast<uint16_t>(size * 2);
    }
    if (!vq_[q].init(size, legacy, indirect_max, why, sizeof why)) {
      return fail(r, "%s: queue %u: %s", name_, q, why);
    }
    queue_entry_[q] = entries > n ? static_cast<uint16_t>(q + 1) : (entries >= 2 ? 1 : 0);
    uint16_t vector = use_msix_ ? queue_entry_[q] : VirtioPci::kNoVector;
    if (!t_.setup_queue(q, vq_[q], vector, why, sizeof why)) return fail(r, "%s: %s", name_, why);
  }
  nq_ = n;
  return true;
}

bool VirtioDevice::driver_ok(TestResult& r) {
  uint8_t s = vstatus::kAcknowledge | vstatus::kDriver | vstatus::kDriverOk;
  if (t_.face() == VirtioFace::Modern) s |= vstatus::kFeaturesOk;
  t_.set_status(s);
  uint8_t back = t_.status();
  if (back & (vstatus::kNeedsReset | vstatus::kFailed)) {
    return fail(r, "%s: status %x after DRIVER_OK", name_, back);
  }
  if (!(back & vstatus::kDriverOk)) return fail(r, "%s: status %x lacks DRIVER_OK", name_, back);
  return true;
}

void VirtioDevice::kick(uint16_t q) {
  if (vq_[q].kick_needed()) {
    t_.notify(q);
    ++notifies_;
  }
}

bool VirtioDevice::wait_used(uint16_t q, uint16_t* head, uint32_t* len, uint32_t ms,
                             TestResult& r) {
  char why[96];
  uint64_t end = rdtsc() + static_cast<uint64_t>(ms) * tsc_khz();
  sti();
  for (;;) {
    int rc = vq_[q].pop(head, len, why, sizeof why);
    if (rc == 1) return true;
    if (rc < 0) return fail(r, "%s queue %u: %s", name_, q, why);
    if (rdtsc() > end) {
      return fail(r, "%s queue %u: nothing used in %u ms (%u in flight, used idx %u)", name_, q, ms,
                  vq_[q].in_flight(), vq_[q].used_index());
    }
    pause();
  }
}

}  // namespace guest
