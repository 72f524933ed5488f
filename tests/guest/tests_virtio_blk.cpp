// virtio-blk tests (virtio 1.2 section 5.2): virtio-blk-rw (the pattern over blk.size bytes from
// sector blk.start, written with many requests in flight, flushed, read back), virtio-blk-ro
// (a read-only disk prefilled with the blkro.seed pattern refuses a write), virtio-blk-getid
// (the serial, checked against blk.serial when given) and virtio-reset (a device reset with
// reads in flight, 2.4 / 4.1.4.3.2, then a fresh initialisation that reads correct data).
// virtio-blk-mq (explicit only) negotiates VIRTIO_BLK_F_MQ (5.2.3) on the writable disk, checks
// num_queues (5.2.4) against blkmq.queues, writes the blkmq.seed pattern with one request in
// flight on every queue at once and reads each chunk back through another queue; on the legacy
// face it also kicks queue indices past num_queues, which the device must ignore; then it
// initialises again with only two of the queues enabled and reads everything back.
// virtio-blk-ack-stream (explicit only) writes the pattern over the same region and prints
// `ACK offset len` for each write the device has completed, the record a host test checks the
// file against after stopping ember mid-stream (hostile-guest case 41).
// virtio-blk-read-loop (explicit only) writes the pattern over the region, then reads it back and
// verifies it pass after pass, blkloop.passes times (0: until ember stops), printing after each
// pass what the driver has counted (requests completed, their data bytes, the device's notify
// writes): the figures a host test compares with GET /ember/counters, and the stream it switches
// the kick path under.
// virtio-blk-medium-change (explicit only) writes the pattern of blk.seed over the region,
// flushes and verifies it, prints `virtio-blk-medium-change: ready`, then keeps 8 reads in
// flight, round after round, until the capacity changes (the host's PATCH /drives gives the disk
// a new medium), at most blkswap.wait_ms (default 20000): every read must complete OK, and the
// change must come with a configuration-change interrupt (MSI-X) and, when blkswap.capacity is
// given, be that many sectors. Then it writes the pattern of blkswap.seed over the region of the
// new medium, flushes and verifies it.
#include "pattern.h"
#include "tests.h"
#include "virtio_blk.h"

namespace guest {

namespace {

struct Region {
  uint64_t offset, bytes, seed;
};

Region rw_region() {
  return Region{cmdline_number("blk.start", 0) * 512, cmdline_number("blk.size", 2 << 20),
                cmdline_number("blk.seed", 1)};
}

VirtioDevice* need(VirtioBlk::Pick pick, const char* what, TestResult& r) {
  VirtioDevice* d = VirtioBlk::find(pick);
  if (d == nullptr) fail(r, "no %svirtio-blk device", what);
  return d;
}

// The writable disk, initialised with one queue and MSI-X, and the region the command line names.
bool open_writable(DeviceSession& session, VirtioBlk& blk, Region& g, TestResult& r) {
  session.d = need(VirtioBlk::Pick::Writable, "writable ", r);
  if (session.d == nullptr || !blk.init(session.d, 1, true, r)) return false;
  g = rw_region();
  if (g.bytes == 0 || g.bytes % 512 != 0) return fail(r, "blk.size must be whole sectors");
  return true;
}

}  // namespace

bool blk_present() {
  return VirtioBlk::find(VirtioBlk::Pick::Any) != nullptr;
}
bool blk_writable_present() {
  return VirtioBlk::find(VirtioBlk::Pick::Writable) != nullptr;
}
bool blk_ro_present() {
  return VirtioBlk::find(VirtioBlk::Pick::ReadOnly) != nullptr;
}

void test_virtio_blk_rw(TestResult& r) {
  DeviceSession session{nullptr};
  VirtioBlk blk;
  Region g;
  if (!open_writable(session, blk, g, r)) return;
  VirtioDevice* d = session.d;
  uint16_t depth = 16, w_max = 0, r_max = 0;
  uint64_t t0 = rdtsc();
  if (!blk.stream(true, g.offset, g.bytes, g.seed, depth, &w_max, r)) return;
  uint8_t status = 0xff;
  if (blk.can_flush()) {
    uint64_t zero = 0;
    if (!blk.request(VirtioBlk::kFlush, 0, &zero, 0, &status, r)) return;
    if (status != VirtioBlk::kOk) return void(fail(r, "%s: FLUSH status %u", d->name(), status));
  }
  uint64_t t1 = rdtsc();
  if (!blk.stream(false, g.offset, g.bytes, g.seed, depth, &r_max, r)) return;
  uint64_t t2 = rdtsc();
  // At least 8 requests were outstanding at once, unless the ring cannot hold that many.
  uint16_t ring = d->queue(0).size();
  uint16_t want = ring >= 64 || blk.indirect() ? 8 : 2;
  if (w_max < want || r_max < want) {
    return void(fail(r, "%s: at most %u/%u requests in flight (ring %u), wanted %u", d->name(),
                     w_max, r_max, ring, want));
  }
  printf(
      "virtio-blk-rw: %s %lu KiB at sector %lu seed %lu, %u in flight, indirect %s, flush %s;"
      " write %lu ms, read %lu ms\n",
      d->name(), g.bytes >> 10, g.offset / 512, g.seed, w_max, blk.indirect() ? "yes" : "no",
      blk.can_flush() ? "yes" : "not offered", (t1 - t0) / tsc_khz(), (t2 - t1) / tsc_khz());
}

void test_virtio_blk_ro(TestResult& r) {
  VirtioDevice* d = need(VirtioBlk::Pick::ReadOnly, "read-only ", r);
  if (d == nullptr) return;
  DeviceSession session{d};
  VirtioBlk blk;
  if (!blk.init(d, 1, true, r)) return;
  if (!d->has(VirtioBlk::kFRo))
    return void(fail(r, "%s: VIRTIO_BLK_F_RO not negotiated", d->name()));
  uint64_t bytes = cmdline_number("blkro.size", 64 << 10), seed = cmdline_number("blkro.seed", 1);
  if (bytes == 0 || bytes % 512 != 0) return void(fail(r, "blkro.size must be whole sectors"));
  uint16_t max;
  if (!blk.stream(false, 0, bytes, seed, 8, &max, r)) return;
  // 5.2.6.2: a write to a device that offers VIRTIO_BLK_F_RO fails with IOERR, writing nothing.
  uint8_t* buf = VirtioBlk::slot_buffer(0);
  pattern_fill(seed + 1, 0, buf, 4096);
  uint8_t status = 0xff;
  if (!blk.request(VirtioBlk::kOut, 0, buf, 4096, &status, r)) return;
  if (status != VirtioBlk::kIoErr) {
    return void(fail(r, "%s: write to a read-only disk gave status %u, expected IOERR (1)",
                     d->name(), status));
  }
  if (!blk.stream(false, 0, bytes, seed, 8, &max, r)) return;
  printf("virtio-blk-ro: %s, %lu KiB verified before and after a refused write\n", d->name(),
         bytes >> 10);
}

void test_virtio_blk_ack_stream(TestResult& r) {
  DeviceSession session{nullptr};
  VirtioBlk blk;
  Region g;
  if (!open_writable(session, blk, g, r)) return;
  uint16_t max_in_flight = 0;
  // The line is printed only once the used ring holds the request with status OK: from then on
  // the guest has been told the data is written.
  auto ack = [](uint64_t offset, uint32_t len) { printf("ACK %lu %u\n", offset, len); };
  if (!blk.stream(true, g.offset, g.bytes, g.seed, 8, &max_in_flight, r, ack)) return;
  printf("virtio-blk-ack-stream: %lu KiB written, up to %u in flight\n", g.bytes >> 10,
         max_in_flight);
}

void test_virtio_blk_read_loop(TestResult& r) {
  DeviceSession session{nullptr};
  VirtioBlk blk;
  Region g;
  if (!open_writable(session, blk, g, r)) return;
  const uint64_t passes = cmdline_number("blkloop.passes", 1);
  uint16_t max_in_flight = 0;
  if (!blk.stream(true, g.offset, g.bytes, g.seed, 16, &max_in_flight, r)) return;
  for (uint64_t pass = 1; passes == 0 || pass <= passes; ++pass) {
    if (!blk.stream(false, g.offset, g.bytes, g.seed, 16, &max_in_flight, r)) return;
    printf("virtio-blk-read-loop: pass %lu verified; %lu requests, %lu bytes, %lu notifies\n", pass,
           blk.completed(), blk.completed_bytes(), session.d->notifies());
  }
}

namespace {
bool write_flush_verify(VirtioBlk& blk, const Region& g, uint64_t seed, TestResult& r) {
  uint16_t max = 0;
  if (!blk.stream(true, g.offset, g.bytes, seed, 16, &max, r)) return false;
  uint8_t status = 0xff;
  uint64_t zero = 0;
  if (blk.can_flush() && !blk.request(VirtioBlk::kFlush, 0, &zero, 0, &status, r)) return false;
  if (blk.can_flush() && status != VirtioBlk::kOk) {
    return fail(r, "%s: FLUSH status %u", blk.device().name(), status);
  }
  return blk.stream(false, g.offset, g.bytes, seed, 16, &max, r);
}
}  // namespace

void test_virtio_blk_medium_change(TestResult& r) {
  DeviceSession session{nullptr};
  VirtioBlk blk;
  Region g;
  if (!open_writable(session, blk, g, r)) return;
  VirtioDevice* d = session.d;
  VirtioPci& t = d->transport();
  if (!t.msix().attached()) return void(fail(r, "%s: no MSI-X", d->name()));
  const uint64_t before = blk.capacity();
  const uint64_t want = cmdline_number("blkswap.capacity", 0);
  const uint64_t wait_ms = cmdline_number("blkswap.wait_ms", 20000);
  if (!write_flush_verify(blk, g, g.seed, r)) return;
  uint32_t cfg_irqs = irq_counts[d->config_vector()];
  printf("virtio-blk-medium-change: ready, %lu sectors\n", before);
  // Reads in flight while the medium changes: each must complete OK; their data is the old
  // medium's or the new one's, so it is not checked.
  constexpr uint16_t kDepth = 8;
  uint64_t rounds = 0, after = before;
  const uint64_t end = rdtsc() + wait_ms * tsc_khz();
  while ((after = t.cfg64(0)) == before) {
    if (rdtsc() > end) {
      return void(
          fail(r, "%s: the capacity stayed %lu sectors for %lu ms", d->name(), before, wait_ms));
    }
    for (uint16_t i = 0; i < kDepth; ++i) {
      uint64_t sector = (g.offset + (uint64_t{i} * VirtioBlk::kChunk) % g.bytes) / 512;
      if (blk.submit(0, VirtioBlk::kIn, sector, VirtioBlk::slot_buffer(i), VirtioBlk::kChunk, 1,
                     false) < 0) {
        return void(fail(r, "%s: cannot queue read %u", d->name(), i));
      }
    }
    blk.kick(0);
    for (uint16_t i = 0; i < kDepth; ++i) {
      int slot;
      uint8_t status;
      uint32_t len;
      if (!blk.complete(0, &slot, &status, &len, r)) return;
      if (status != VirtioBlk::kOk) {
        return void(
            fail(r, "%s: a read in flight across the change: status %u", d->name(), status));
      }
    }
    ++rounds;
  }
  if (!wait_until(&irq_counts[d->config_vector()], cfg_irqs + 1, 1000)) {
    return void(fail(r, "%s: no configuration-change interrupt with the new capacity", d->name()));
  }
  if (want != 0 && after != want) {
    return void(
        fail(r, "%s: capacity %lu sectors after the change, expected %lu", d->name(), after, want));
  }
  if (g.offset + g.bytes > after * 512) {
    return void(fail(r, "%s: the region does not fit the new medium", d->name()));
  }
  if (!write_flush_verify(blk, g, cmdline_number("blkswap.seed", g.seed + 1), r)) return;
  printf(
      "virtio-blk-medium-change: %lu -> %lu sectors after %lu rounds of %u reads; the new "
      "medium written and verified\n",
      before, after, rounds, kDepth);
}

namespace {
// One chunk per queue: written through queue q, read back through queue (q + 1) % n, all queues
// with a request in flight at once. `write` false only reads back.
bool mq_round(VirtioBlk& blk, bool write, uint64_t seed, TestResult& r) {
  VirtioDevice* d = &blk.device();
  const uint16_t n = blk.queues();
  constexpr uint32_t kLen = VirtioBlk::kChunk;
  for (int pass = write ? 0 : 1; pass < 2; ++pass) {
    int slot_of[VirtioDevice::kMaxQueues];
    for (uint16_t q = 0; q < n; ++q) {
      uint16_t chunk = pass == 0 ? q : static_cast<uint16_t>((q + n - 1) % n);
      uint8_t* buf = VirtioBlk::slot_buffer(q);
      if (pass == 0) {
        pattern_fill(seed, uint64_t{chunk} * kLen, buf, kLen);
      } else {
        memset(buf, 0xa5, kLen);
      }
      slot_of[q] = blk.submit(q, pass == 0 ? VirtioBlk::kOut : VirtioBlk::kIn,
                              uint64_t{chunk} * kLen / 512, buf, kLen, 1 + q % 3, false);
      if (slot_of[q] < 0) return fail(r, "%s: cannot queue on queue %u", d->name(), q);
    }
    for (uint16_t q = 0; q < n; ++q) blk.kick(q);
    for (uint16_t q = 0; q < n; ++q) {
      int slot;
      uint8_t status;
      uint32_t len;
      if (!blk.complete(q, &slot, &status, &len, r)) return false;
      if (slot != slot_of[q] || status != VirtioBlk::kOk) {
        return fail(r, "%s: queue %u completed slot %d with status %u (expected slot %d, OK)",
                    d->name(), q, slot, status, slot_of[q]);
      }
      if (pass == 1) {
        uint16_t chunk = static_cast<uint16_t>((q + n - 1) % n);
        uint64_t bad =
            pattern_mismatch(seed, uint64_t{chunk} * kLen, VirtioBlk::slot_buffer(q), kLen);
        if (bad != kLen) {
          return fail(r, "%s: chunk %u read through queue %u differs at byte %lu", d->name(), chunk,
                      q, bad);
        }
      }
    }
  }
  return true;
}
}  // namespace

void test_virtio_blk_mq(TestResult& r) {
  DeviceSession session{nullptr};
  VirtioBlk blk;
  session.d = need(VirtioBlk::Pick::Writable, "writable ", r);
  if (session.d == nullptr) return;
  VirtioDevice* d = session.d;
  if (!((d->offered() >> VirtioBlk::kFMq) & 1)) {
    return void(fail(r, "%s: VIRTIO_BLK_F_MQ not offered", d->name()));
  }
  if (!blk.init(d, VirtioDevice::kMaxQueues, true, r)) return;
  if (!d->has(VirtioBlk::kFMq))
    return void(fail(r, "%s: VIRTIO_BLK_F_MQ not negotiated", d->name()));
  uint16_t offered = d->transport().cfg16(34);  // 5.2.4 num_queues
  uint64_t want = cmdline_number("blkmq.queues", 0);
  if (want != 0 && offered != want) {
    return void(fail(r, "%s: num_queues %u, expected %lu", d->name(), offered, want));
  }
  uint16_t n = blk.queues();
  uint16_t expect_n = offered < VirtioDevice::kMaxQueues ? offered : VirtioDevice::kMaxQueues;
  if (n != expect_n) return void(fail(r, "%s: %u queues set up of %u", d->name(), n, offered));
  uint64_t seed = cmdline_number("blkmq.seed", 5);
  if (!mq_round(blk, true, seed, r)) return;
  const char* past = "";
  if (d->transport().face() == VirtioFace::Legacy) {
    // Kicks for queue indices the device does not have: ignored, the device goes on.
    const uint16_t past_indices[] = {offered, static_cast<uint16_t>(offered + 1), 0xffff};
    for (uint16_t q : past_indices) {
      outw(static_cast<uint16_t>(d->transport().io_base() + 16), q);  // 4.1.4.10 queue notify
    }
    past = ", kicks past num_queues ignored";
  }
  if (!mq_round(blk, false, seed, r)) return;
  // Only some queues: two of them (or the one there is), everything read back again.
  VirtioBlk some;
  if (!some.init(d, 2, true, r)) return;
  uint16_t m = some.queues();
  if (m != (offered < 2 ? offered : 2)) {
    return void(fail(r, "%s: %u queues set up, asked for 2 of %u", d->name(), m, offered));
  }
  if (!mq_round(some, false, seed, r)) return;
  printf("virtio-blk-mq: %s num_queues %u, %u used at once, then %u%s\n", d->name(), offered, n, m,
         past);
}

void test_virtio_blk_getid(TestResult& r) {
  VirtioDevice* d = need(VirtioBlk::Pick::Any, "", r);
  if (d == nullptr) return;
  DeviceSession session{d};
  VirtioBlk blk;
  if (!blk.init(d, 1, true, r)) return;
  // Zeroed like Linux's buffer, so a device that writes only the string and its terminator
  // reads as NUL-padded; bytes past the 20 are poisoned to catch an overrun.
  uint8_t* id = VirtioBlk::slot_buffer(0);
  memset(id, 0, VirtioBlk::kIdBytes);
  memset(id + VirtioBlk::kIdBytes, 0xa5, 44);
  uint8_t status = 0xff;
  if (!blk.request(VirtioBlk::kGetId, 0, id, VirtioBlk::kIdBytes, &status, r)) return;
  if (status != VirtioBlk::kOk) return void(fail(r, "%s: GET_ID status %u", d->name(), status));
  if (id[VirtioBlk::kIdBytes] != 0xa5)
    return void(fail(r, "%s: GET_ID wrote past 20 bytes", d->name()));
  // 5.2.6: up to 20 bytes of ID string, NUL-padded when shorter.
  size_t n = 0;
  while (n < VirtioBlk::kIdBytes && id[n] != 0) {
    if (id[n] < 0x20 || id[n] > 0x7e) {
      return void(fail(r, "%s: GET_ID byte %zu is %x, not printable", d->name(), n, id[n]));
    }
    ++n;
  }
  for (size_t i = n; i < VirtioBlk::kIdBytes; ++i) {
    if (id[i] != 0)
      return void(fail(r, "%s: GET_ID byte %zu is %x after the NUL", d->name(), i, id[i]));
  }
  char got[VirtioBlk::kIdBytes + 1];
  memcpy(got, id, n);
  got[n] = 0;
  char want[64];
  if (cmdline_get("blk.serial", want, sizeof want)) {
    size_t wn = strlen(want) < VirtioBlk::kIdBytes ? strlen(want) : VirtioBlk::kIdBytes;
    if (wn != n || memcmp(want, got, n) != 0) {
      return void(fail(r, "%s: serial \"%s\", expected \"%s\"", d->name(), got, want));
    }
  }
  printf("virtio-blk-getid: %s serial \"%s\"\n", d->name(), got);
}

void test_virtio_reset(TestResult& r) {
  VirtioDevice* d = need(VirtioBlk::Pick::Writable, "writable ", r);
  if (d == nullptr) return;
  DeviceSession session{d};
  VirtioBlk blk;
  if (!blk.init(d, 1, true, r)) return;
  // The same pattern and place as virtio-blk-rw, so the disk stays consistent for the host.
  Region g = rw_region();
  uint64_t bytes = g.bytes < (256 << 10) ? g.bytes : (256 << 10);
  uint16_t max;
  if (!blk.stream(true, g.offset, bytes, g.seed, 16, &max, r)) return;
  // 16 reads of 4 KiB in flight (poisoned buffers), then reset without waiting for them.
  constexpr uint32_t kLen = 4096;
  constexpr uint16_t kReads = 16;
  uint16_t used_before = d->queue(0).used_index();
  for (uint16_t i = 0; i < kReads; ++i) {
    uint8_t* buf = VirtioBlk::slot_buffer(i);
    memset(buf, 0xa5, kLen);
    uint64_t sector = (g.offset + (i * kLen) % bytes) / 512;
    if (blk.submit(0, VirtioBlk::kIn, sector, buf, kLen, 1 + i % 3, i % 2 == 1) < 0) {
      return void(fail(r, "%s: cannot queue read %u", d->name(), i));
    }
  }
  blk.kick(0);
  if (!d->reset(r)) return;
  // Hostile-guest case 25: nothing reaches guest memory once the reset has completed.
  static uint8_t snapshot[kReads * 512];
  Virtqueue& vq = d->queue(0);
  uint16_t used_after_reset = vq.used_index();
  for (uint16_t i = 0; i < kReads; ++i) memcpy(snapshot + i * 512, VirtioBlk::slot_buffer(i), 512);
  delay_us(50000);
  if (vq.used_index() != used_after_reset) {
    return void(fail(r, "%s: used idx moved from %u to %u after reset", d->name(), used_after_reset,
                     vq.used_index()));
  }
  for (uint16_t i = 0; i < kReads; ++i) {
    if (memcmp(snapshot + i * 512, VirtioBlk::slot_buffer(i), 512) != 0) {
      return void(fail(r, "%s: read buffer %u changed after reset", d->name(), i));
    }
  }
  printf("virtio-reset: %s reset with %u reads queued, %u of them completed before it\n", d->name(),
         kReads, static_cast<uint16_t>(used_after_reset - used_before));
  // A fresh initialisation from scratch, then the data read back.
  VirtioBlk again;
  if (!again.init(d, 1, true, r)) return;
  if (!again.stream(false, g.offset, bytes, g.seed, 16, &max, r)) return;
}

}  // namespace guest
