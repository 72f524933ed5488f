// virtio-blk driver (virtio 1.2 section 5.2). The request header (5.2.6: le32 type, le32
// reserved, le64 sector) and status byte of each slot live in one page; read buffers come from a
// shared 1 MiB arena. The status byte is poisoned (0xff) before each submission so a request the
// device completes without writing it is caught. Pattern data is generated once into a 2 MiB
// reference window that writes are sent from and reads are compared against with `repe cmpsq`
// (memcmp): under instruction emulation a string instruction costs a fraction of a loop.
#include "virtio_blk.h"

#include "pattern.h"

namespace guest {

namespace {
uint8_t* g_arena = nullptr;  // kMaxSlots * kChunk bytes

// The pattern of disk bytes [off, off + len) for `seed`, generated on demand.
struct Reference {
  static constexpr uint64_t kBytes = 2 << 20;
  uint8_t* mem;
  uint64_t seed, off, len;
  bool covers(uint64_t s, uint64_t o, uint64_t l) const {
    return mem != nullptr && len != 0 && s == seed && o >= off && o + l <= off + len;
  }
  // Regenerates the window to start at `o` and reach `end` (at most kBytes).
  bool load(uint64_t s, uint64_t o, uint64_t end) {
    if (mem == nullptr &&
        (mem = static_cast<uint8_t*>(alloc_pages_uninit(kBytes / 4096))) == nullptr) {
      return false;
    }
    seed = s;
    off = o;
    len = end - o < kBytes ? end - o : kBytes;
    pattern_fill(s, o, mem, len);
    return true;
  }
  const uint8_t* at(uint64_t o) const { return mem + (o - off); }
};
constinit Reference g_ref{};
constexpr uint8_t kStatusPoison = 0xff;
// 5.2.4 configuration layout.
constexpr uint32_t kCfgCapacity = 0, kCfgSizeMax = 8, kCfgSegMax = 12, kCfgNumQueues = 34;
}  // namespace

uint8_t* VirtioBlk::slot_buffer(uint16_t slot) {
  if (g_arena == nullptr) {
    g_arena = static_cast<uint8_t*>(alloc_pages_uninit(kMaxSlots * kChunk / 4096));
    if (g_arena == nullptr) return nullptr;
  }
  return g_arena + static_cast<size_t>(slot) * kChunk;
}

VirtioDevice* VirtioBlk::find(Pick pick) {
  for (size_t i = 0;; ++i) {
    VirtioDevice* d = VirtioDevice::find(kVirtioTypeBlk, i);
    if (d == nullptr) return nullptr;
    bool ro = (d->offered() >> kFRo) & 1;
    if (pick == Pick::Any || (pick == Pick::ReadOnly) == ro) return d;
  }
}

bool VirtioBlk::init(VirtioDevice* d, uint16_t queues, bool use_msix, TestResult& r) {
  d_ = d;
  busy_ = 0;
  for (Slot& s : slots_) s.busy = false;
  if (hdr_ == nullptr && (hdr_ = static_cast<uint8_t*>(alloc_pages(1))) == nullptr) {
    return fail(r, "out of pages");
  }
  if (slot_buffer(0) == nullptr) return fail(r, "out of pages for the data arena");
  uint64_t wanted = (1ULL << kFSizeMax) | (1ULL << kFSegMax) | (1ULL << kFRo) |
                    (1ULL << kFBlkSize) | (1ULL << kFFlush) | (1ULL << kFeatIndirectDesc);
  if (queues > 1) wanted |= 1ULL << kFMq;
  if (!d->begin(wanted, use_msix, r)) return false;
  VirtioPci& t = d->transport();
  capacity_ = t.cfg64(kCfgCapacity);
  size_max_ = d->has(kFSizeMax) ? t.cfg32(kCfgSizeMax) : 0;
  seg_max_ = d->has(kFSegMax) ? t.cfg32(kCfgSegMax) : 0;
  uint16_t n = 1;
  if (queues > 1 && d->has(kFMq)) {
    uint16_t avail = t.cfg16(kCfgNumQueues);
    n = avail < queues ? avail : queues;
    if (n > VirtioDevice::kMaxQueues) n = VirtioDevice::kMaxQueues;
    if (n == 0) return fail(r, "%s: VIRTIO_BLK_F_MQ with num_queues 0", d->name());
  }
  if (!d->setup_queues(n, 256, indirect() ? kMaxDescs : 0, r)) return false;
  return d->driver_ok(r);
}

int VirtioBlk::submit(uint16_t q, uint32_t type, uint64_t sector, void* buf, uint32_t len,
                      uint16_t nsegs, bool use_indirect) {
  int slot = -1;
  for (uint16_t i = 0; i < kMaxSlots; ++i) {
    if (!slots_[i].busy) {
      slot = i;
      break;
    }
  }
  if (slot < 0) return -1;
  VqSeg segs[kMaxDescs];
  uint8_t* hdr = hdr_ + 32 * slot;
  uint32_t reserved = 0;
  memcpy(hdr, &type, 4);
  memcpy(hdr + 4, &reserved, 4);
  memcpy(hdr + 8, &sector, 8);
  hdr[16] = kStatusPoison;
  segs[0] = VqSeg{reinterpret_cast<uint64_t>(hdr), 16, false};
  uint16_t n = 1;
  if (len != 0) {
    if (nsegs == 0) nsegs = 1;
    uint32_t piece = (len / nsegs + 511) & ~511u;
    if (piece == 0 || piece > len) piece = len;
    if (size_max_ >= 512 && piece > size_max_) piece = size_max_ & ~511u;
    bool writable = type == kIn || type == kGetId;
    for (uint32_t off = 0; off < len; off += piece) {
      if (n + 1 >= kMaxDescs || (seg_max_ != 0 && n > seg_max_)) return -2;
      uint32_t l = len - off < piece ? len - off : piece;
      segs[n++] = VqSeg{reinterpret_cast<uint64_t>(buf) + off, l, writable};
    }
  }
  segs[n++] = VqSeg{reinterpret_cast<uint64_t>(hdr + 16), 1, true};
  int head = d_->queue(q).add(segs, n, use_indirect && indirect());
  if (head < 0) return -1;
  slots_[slot] = Slot{true, q, static_cast<uint16_t>(head), len};
  ++busy_;
  return slot;
}

bool VirtioBlk::complete(uint16_t q, int* slot, uint8_t* status, uint32_t* len, TestResult& r) {
  uint16_t head;
  if (!d_->wait_used(q, &head, len, VirtioDevice::kTimeoutMs, r)) return false;
  for (uint16_t i = 0; i < kMaxSlots; ++i) {
    if (slots_[i].busy && slots_[i].q == q && slots_[i].head == head) {
      slots_[i].busy = false;
      --busy_;
      *slot = i;
      *status = static_cast<volatile uint8_t*>(hdr_)[32 * i + 16];
      if (*status == kOk) {
        ++completed_;
        completed_bytes_ += slots_[i].len;
      }
      return true;
    }
  }
  return fail(r, "%s: used head %u matches no request", d_->name(), head);
}

bool VirtioBlk::request(uint32_t type, uint64_t sector, void* buf, uint32_t len, uint8_t* status,
                        TestResult& r) {
  int slot = submit(0, type, sector, buf, len, 1, false);
  if (slot < 0) return fail(r, "%s: cannot queue a request (%d)", d_->name(), slot);
  kick(0);
  int done;
  uint32_t used_len;
  if (!complete(0, &done, status, &used_len, r)) return false;
  if (done != slot)
    return fail(r, "%s: completion for slot %d, expected %d", d_->name(), done, slot);
  return true;
}

bool VirtioBlk::stream(bool write, uint64_t offset, uint64_t bytes, uint64_t seed, uint16_t depth,
                       uint16_t* max_in_flight, TestResult& r,
                       void (*on_done)(uint64_t offset, uint32_t len)) {
  const char* what = write ? "write" : "read";
  if (offset % 512 != 0 || bytes % 512 != 0) return fail(r, "unaligned range");
  if ((offset + bytes) / 512 > capacity_) {
    return fail(r, "%s: range ends at sector %lu beyond capacity %lu", d_->name(),
                (offset + bytes) / 512, capacity_);
  }
  if (depth > kMaxSlots) depth = kMaxSlots;
  const uint64_t end = offset + bytes;
  uint64_t chunks = (bytes + kChunk - 1) / kChunk, next = 0, done = 0;
  uint64_t chunk_of[kMaxSlots] = {};
  auto chunk_len = [&](uint64_t c) {
    return static_cast<uint32_t>(bytes - c * kChunk < kChunk ? bytes - c * kChunk : kChunk);
  };
  *max_in_flight = 0;
  while (done < chunks) {
    bool queued = false;
    while (next < chunks && busy_ < depth) {
      uint64_t off = offset + next * kChunk;
      uint32_t len = chunk_len(next);
      uint8_t* buf;
      if (write) {
        // Written straight from the reference window, which only moves with nothing in flight.
        if (!g_ref.covers(seed, off, len)) {
          if (busy_ != 0) break;
          if (!g_ref.load(seed, off, end)) return fail(r, "out of pages for the pattern");
        }
        buf = const_cast<uint8_t*>(g_ref.at(off));
      } else {
        uint16_t free = 0;
        while (free + 1 < kMaxSlots && slots_[free].busy) ++free;  // busy_ < depth: one is free
        buf = slot_buffer(free);
        // Poison the tag word of every sector (and the last word): a read that moves nothing,
        // or only part of the data, cannot pass on what an earlier read left in the buffer.
        for (uint32_t w = 0; w < len; w += 512) memset(buf + w, 0xa5, 8);
        memset(buf + len - 8, 0xa5, 8);
      }
      int got = submit(0, write ? kOut : kIn, off / 512, buf, len,
                       static_cast<uint16_t>(1 + next % 4), next % 2 == 1);
      if (got == -2) return fail(r, "%s: cannot express a %u-byte request", d_->name(), len);
      if (got < 0) break;  // ring full: reap first
      if (!write && buf != slot_buffer(static_cast<uint16_t>(got)))
        return fail(r, "slot bookkeeping");
      chunk_of[got] = next++;
      queued = true;
    }
    if (busy_ > *max_in_flight) *max_in_flight = busy_;
    if (queued) kick(0);
    int slot;
    uint8_t status;
    uint32_t used_len;
    if (!complete(0, &slot, &status, &used_len, r)) return false;
    uint64_t off = offset + chunk_of[slot] * kChunk;
    uint32_t len = chunk_len(chunk_of[slot]);
    if (status != kOk) {
      return fail(r, "%s: %s of sector %lu: status %u", d_->name(), what, off / 512, status);
    }
    if (!write) {
      if (used_len > len + 1) {
        return fail(r, "%s: read of sector %lu: used len %u for %u bytes", d_->name(), off / 512,
                    used_len, len + 1);
      }
      if (!g_ref.covers(seed, off, len) && !g_ref.load(seed, off, end)) {
        return fail(r, "out of pages for the pattern");
      }
      const uint8_t* got = slot_buffer(static_cast<uint16_t>(slot));
      const uint8_t* want = g_ref.at(off);
      if (memcmp(got, want, len) != 0) {
        uint32_t i = 0;
        while (got[i] == want[i]) ++i;
        return fail(r, "%s: disk byte %lu (sector %lu) reads %02x, pattern %02x", d_->name(),
                    off + i, (off + i) / 512, got[i], want[i]);
      }
    }
    if (on_done != nullptr) on_done(off, len);
    ++done;
  }
  return true;
}

}  // namespace guest
