// A virtio device as the test guest's drivers see it: the transport (either face), its split
// virtqueues, the MSI-X entries and IDT vectors behind them, and the generic initialisation
// sequence of virtio 1.2 section 3.1.1 (reset, ACKNOWLEDGE, DRIVER, feature negotiation,
// FEATURES_OK, queue set-up, DRIVER_OK). Devices are found by type among the PCI functions;
// each gets a fixed block of IDT vectors: its configuration-change vector, then one per queue.
#pragma once

#include "virtio_pci.h"

namespace guest {

class VirtioDevice {
 public:
  static constexpr uint16_t kMaxQueues = 4;
  static constexpr size_t kMaxDevices = 12;
  static constexpr uint32_t kTimeoutMs = 5000;

  // The `nth` virtio device of `type` (0 = the first), attached through the command line's
  // face on first use; nullptr when there is none. attached() says whether the face works.
  static VirtioDevice* find(uint16_t type, size_t nth = 0);
  bool attached() const { return attached_; }
  const char* attach_error() const { return attach_error_; }
  const char* name() const { return name_; }  // e.g. "virtio-blk 00:02.0"
  VirtioPci& transport() { return t_; }
  uint64_t offered() const { return offered_; }  // device features as read at attach time

  // 3.1.1 steps 1-6: reset (waiting until the status reads 0), ACKNOWLEDGE, DRIVER, offered &
  // `wanted` (plus VERSION_1 and ACCESS_PLATFORM on the modern face) written, FEATURES_OK set and
  // read back (modern face; 3.1.2: legacy drivers have no FEATURES_OK). `use_msix` selects
  // MSI-X or INTx for everything that follows.
  bool begin(uint64_t wanted, bool use_msix, TestResult& r);
  bool has(unsigned bit) const { return (features_ >> bit) & 1; }
  uint64_t features() const { return features_; }
  // Sets up queues [0, n) with at most `max_size` entries each (the legacy face uses the
  // device's size), each with its own MSI-X entry when the table has room.
  bool setup_queues(uint16_t n, uint16_t max_size, uint16_t indirect_max, TestResult& r);
  bool driver_ok(TestResult& r);  // step 8; fails if the device reports NEEDS_RESET or FAILED
  bool reset(TestResult& r);      // status 0, then waits (bounded) until it reads 0

  Virtqueue& queue(uint16_t q) { return vq_[q]; }
  uint16_t queue_count() const { return nq_; }
  void kick(uint16_t q);  // notifies unless the device suppressed notifications
  // Notify-register writes kick() has made since the device was found (each one a kick the
  // host counts: an ioeventfd signal or a userspace exit).
  uint64_t notifies() const { return notifies_; }
  // Waits up to `ms` (interrupts enabled) for the next used element of queue `q`.
  bool wait_used(uint16_t q, uint16_t* head, uint32_t* len, uint32_t ms, TestResult& r);

  // Interrupt routing: IDT vectors and MSI-X table entries in use.
  uint8_t config_vector() const { return vector_base_; }
  uint8_t queue_vector(uint16_t q) const;  // the IDT vector queue q's entry delivers
  uint16_t queue_entry(uint16_t q) const { return queue_entry_[q]; }
  uint8_t first_vector() const { return vector_base_; }
  uint8_t vector_count() const { return 1 + kMaxQueues; }

 private:
  bool attach(PciFunction* f, uint16_t type, uint8_t vector_base);

  VirtioPci t_;
  uint16_t type_ = 0;
  bool attached_ = false;
  char attach_error_[96] = {};
  char name_[32] = {};
  uint8_t vector_base_ = 0;
  uint64_t offered_ = 0, features_ = 0;
  bool use_msix_ = false;
  uint16_t nq_ = 0;
  uint16_t queue_entry_[kMaxQueues] = {};
  Virtqueue vq_[kMaxQueues];
  uint64_t notifies_ = 0;
};

// Resets the device and disables interrupts when a test leaves, whichever way it leaves.
struct DeviceSession {
  VirtioDevice* d;
  ~DeviceSession() {
    TestResult ignored;
    if (d != nullptr) d->reset(ignored);
    cli();
  }
};

}  // namespace guest
