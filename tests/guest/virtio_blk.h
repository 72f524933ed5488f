// The virtio-blk driver of the test guest (virtio 1.2 section 5.2): feature negotiation and
// configuration (capacity, size_max, seg_max, num_queues), requests as descriptor chains of a
// device-readable header, data segments and a device-writable status byte (5.2.6), placed
// directly or through indirect tables, many in flight at once, and a streaming helper that
// writes or verifies the pattern of pattern.h over a range of the disk.
#pragma once

#include "virtio_device.h"

namespace guest {

class VirtioBlk {
 public:
  // 5.2.3 feature bits, 5.2.6 request types and status values.
  static constexpr unsigned kFSizeMax = 1, kFSegMax = 2, kFRo = 5, kFBlkSize = 6, kFFlush = 9,
                            kFMq = 12;
  static constexpr uint32_t kIn = 0, kOut = 1, kFlush = 4, kGetId = 8;
  static constexpr uint8_t kOk = 0, kIoErr = 1, kUnsupp = 2;
  static constexpr uint16_t kMaxSlots = 32;  // requests in flight per driver instance
  static constexpr uint16_t kMaxDescs = 16;  // descriptors per request (header + data + status)
  static constexpr uint32_t kIdBytes = 20;
  static constexpr uint32_t kChunk = 32 * 1024;  // bytes per request in stream()

  enum class Pick : uint8_t { Any, Writable, ReadOnly };
  // The first virtio-blk device (that offers VIRTIO_BLK_F_RO, or does not), or nullptr.
  static VirtioDevice* find(Pick pick);

  // 3.1.1 with the 5.2.5 specifics; up to `queues` request queues when VIRTIO_BLK_F_MQ is
  // offered (one otherwise), interrupts by MSI-X or INTx.
  bool init(VirtioDevice* d, uint16_t queues, bool use_msix, TestResult& r);
  VirtioDevice& device() { return *d_; }
  uint64_t capacity() const { return capacity_; }  // in 512-byte sectors
  bool can_flush() const { return d_->has(kFFlush); }
  bool indirect() const { return d_->has(kFeatIndirectDesc); }
  uint16_t queues() const { return d_->queue_count(); }

  // Queues a request without notifying: the header, `buf` split into `nsegs` data segments
  // (within size_max/seg_max; device-writable for IN and GET_ID) and the status byte. Returns
  // the request slot, -1 when no slot or ring space is free, -2 when it cannot be expressed.
  int submit(uint16_t q, uint32_t type, uint64_t sector, void* buf, uint32_t len, uint16_t nsegs,
             bool use_indirect);
  void kick(uint16_t q) { d_->kick(q); }
  // Waits for the next completion on queue `q`: its slot, status byte and used length.
  bool complete(uint16_t q, int* slot, uint8_t* status, uint32_t* len, TestResult& r);
  uint16_t in_flight() const { return busy_; }
  // One request on queue 0, waited for.
  bool request(uint32_t type, uint64_t sector, void* buf, uint32_t len, uint8_t* status,
               TestResult& r);

  // Writes the pattern of `seed` over disk bytes [offset, offset + bytes), or reads them back and
  // verifies them, with up to `depth` chunk-sized requests in flight, data split into 1-4
  // segments and every other request indirect (when negotiated). Reports the largest number of
  // requests in flight at once in `*max_in_flight`, and calls `on_done` (when given) with the
  // disk range of each request as soon as the device has completed it successfully.
  bool stream(bool write, uint64_t offset, uint64_t bytes, uint64_t seed, uint16_t depth,
              uint16_t* max_in_flight, TestResult& r,
              void (*on_done)(uint64_t offset, uint32_t len) = nullptr);
  // What this driver instance has had completed with status OK: requests, and the data bytes
  // they moved (what the device's run-record counters "requests" and "bytes" count).
  uint64_t completed() const { return completed_; }
  uint64_t completed_bytes() const { return completed_bytes_; }

  // A buffer for `slot` (kChunk bytes) in the shared data arena.
  static uint8_t* slot_buffer(uint16_t slot);

 private:
  struct Slot {
    bool busy;
    uint16_t q, head;
    uint32_t len;  // data bytes
  };
  VirtioDevice* d_ = nullptr;
  uint64_t capacity_ = 0;
  uint32_t size_max_ = 0, seg_max_ = 0;
  uint8_t* hdr_ = nullptr;  // per slot: 16-byte header, status byte at +16 (32-byte stride)
  Slot slots_[kMaxSlots] = {};
  uint16_t busy_ = 0;
  uint64_t completed_ = 0, completed_bytes_ = 0;
};

}  // namespace guest
