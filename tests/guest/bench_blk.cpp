// bench-blk: 4 KiB virtio-blk reads, `blk.count=N` (default 10000) at each depth of
// `blk.depth=1,32`, over the first `blk.span=` bytes of the disk (default 64M, at most its
// capacity), sequentially and wrapping. One BENCH line per depth.
//
// The driver side is as lean as a split ring allows (virtio 1.2 2.7), because on a PVM host every
// guest kernel instruction is emulated and would otherwise hide the monitor's cost: each in-flight
// slot owns a fixed 3-descriptor chain (header, 4 KiB data, status) written once; a request is
// one header sector, one available entry and the index; completions are found by polling the used
// ring. No VIRTIO_F_EVENT_IDX, no indirect descriptors; a kick is skipped only when the device
// set VRING_USED_F_NO_NOTIFY (2.7.10).
//
// Interrupts: `blk.wait=poll` (default) leaves MSI-X on and unmasked, so the device raises an
// interrupt for every used buffer as it would for Linux, while the guest runs with interrupts
// disabled and polls (the emulated guest handler is not part of the figure); `blk.wait=hlt`
// sleeps until the interrupt instead; `blk.wait=nointr` sets VRING_AVAIL_F_NO_INTERRUPT.
#include "bench.h"
#include "tests.h"
#include "virtio_blk.h"

namespace guest {

namespace {

constexpr uint16_t kDescNext = Virtqueue::kDescNext, kDescWrite = Virtqueue::kDescWrite;
constexpr uint16_t kUsedNoNotify = Virtqueue::kUsedNoNotify, kAvailNoInterrupt = 1;
constexpr uint16_t kMaxDepth = 32;
constexpr uint32_t kBlockBytes = 4096;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};
struct Header {
  uint32_t type, reserved;
  uint64_t sector;
};

enum class Wait : uint8_t { Poll, Hlt, NoInterrupt };

struct Ring {
  volatile Desc* desc;
  volatile uint16_t* avail;  // flags, idx, ring[size]
  volatile uint16_t* used;   // flags, idx, then {le32 id, le32 len} per entry
  volatile uint32_t* elems;  // used + 4 bytes
  uint16_t size;
  uint16_t avail_idx = 0, last_used = 0;

  uint16_t used_idx() const { return used[1]; }
  uint32_t used_id(uint16_t i) const { return elems[2 * (i & (size - 1))]; }
  void add(uint16_t head) { avail[2 + (avail_idx++ & (size - 1))] = head; }
  void publish() {
    barrier();
    avail[1] = avail_idx;
  }
  bool kick_needed() const {
    mb();  // 2.7.13.4: the index before the flags are read
    return !(used[0] & kUsedNoNotify);
  }
};

volatile uint32_t g_blk_irqs = 0;
void on_blk_irq(uint8_t) {
  g_blk_irqs = g_blk_irqs + 1;
}

struct BenchSession {
  VirtioDevice* d;
  uint8_t vector;
  ~BenchSession() {
    TestResult ignored;
    if (d != nullptr) d->reset(ignored);
    sti();  // whatever the device raised while we polled is taken (and counted) here
    delay_us(1000);
    cli();
    set_irq_handler(vector, nullptr);
  }
};

}  // namespace

void test_bench_blk(TestResult& r) {
  uint64_t count = cmdline_number("blk.count", 10000);
  uint64_t span = cmdline_number("blk.span", 64ULL << 20);
  char depths[32] = "1,32";
  cmdline_get("blk.depth", depths, sizeof depths);
  char wait_arg[8] = "poll";
  cmdline_get("blk.wait", wait_arg, sizeof wait_arg);
  Wait wait = wait_arg[0] == 'h' ? Wait::Hlt : wait_arg[0] == 'n' ? Wait::NoInterrupt : Wait::Poll;
  const char* wait_name = wait == Wait::Hlt ? "hlt" : wait == Wait::NoInterrupt ? "nointr" : "poll";

  VirtioDevice* d = VirtioBlk::find(VirtioBlk::Pick::Any);
  if (d == nullptr) return void(fail(r, "no virtio-blk device"));
  VirtioBlk blk;
  if (!blk.init(d, 1, true, r)) return;
  BenchSession session{d, d->queue_vector(0)};
  set_irq_handler(d->queue_vector(0), on_blk_irq);
  uint64_t sectors = blk.capacity() < span / 512 ? blk.capacity() : span / 512;
  sectors &= ~7ULL;
  if (sectors < 8)
    return void(fail(r, "%s: disk of %lu sectors is too small", d->name(), blk.capacity()));

  Virtqueue& q = d->queue(0);
  if (q.size() < 3 * kMaxDepth)
    return void(fail(r, "%s: queue of %u entries", d->name(), q.size()));
  Ring ring{reinterpret_cast<volatile Desc*>(q.desc_addr()),
            reinterpret_cast<volatile uint16_t*>(q.avail_addr()),
            reinterpret_cast<volatile uint16_t*>(q.used_addr()),
            reinterpret_cast<volatile uint32_t*>(q.used_addr() + 4), q.size()};
  auto* hdr = static_cast<volatile Header*>(alloc_pages(1));
  auto* status = reinterpret_cast<volatile uint8_t*>(hdr) + 2048;
  if (hdr == nullptr) return void(fail(r, "out of pages"));
  for (uint16_t s = 0; s < kMaxDepth; ++s) {
    uint8_t* data = VirtioBlk::slot_buffer(s);  // 32 KiB apart, page aligned
    if (data == nullptr) return void(fail(r, "out of pages"));
    volatile Desc* c = ring.desc + 3 * s;
    c[0].addr = reinterpret_cast<uint64_t>(&hdr[s]);
    c[0].len = sizeof(Header);
    c[0].flags = kDescNext;
    c[0].next = static_cast<uint16_t>(3 * s + 1);
    c[1].addr = reinterpret_cast<uint64_t>(data);
    c[1].len = kBlockBytes;
    c[1].flags = kDescNext | kDescWrite;
    c[1].next = static_cast<uint16_t>(3 * s + 2);
    c[2].addr = reinterpret_cast<uint64_t>(&status[s]);
    c[2].len = 1;
    c[2].flags = kDescWrite;
    c[2].next = 0;
    hdr[s].type = VirtioBlk::kIn;
    hdr[s].reserved = 0;
  }
  ring.avail[0] = wait == Wait::NoInterrupt ? kAvailNoInterrupt : 0;
  (void)tsc_khz();

  uint64_t next_sector = 0;
  auto submit = [&](uint16_t s) {
    hdr[s].sector = next_sector;
    next_sector = next_sector + 8 < sectors ? next_sector + 8 : 0;
    status[s] = 0xff;
    ring.add(static_cast<uint16_t>(3 * s));
  };

  const char* p = depths;
  while (*p) {
    uint64_t depth = 0;
    while (*p >= '0' && *p <= '9') depth = depth * 10 + static_cast<uint64_t>(*p++ - '0');
    while (*p && (*p < '0' || *p > '9')) ++p;
    if (depth == 0 || depth > kMaxDepth)
      return void(fail(r, "blk.depth %lu (1-%u)", depth, kMaxDepth));
    uint64_t warm = depth * 4, total = warm + count, submitted = 0, done = 0, t0 = 0;
    uint64_t limit = rdtsc() + 5000ULL * tsc_khz();
    cli();
    for (uint16_t s = 0; s < depth; ++s, ++submitted) submit(s);
    ring.publish();
    if (ring.kick_needed()) d->transport().notify(0);
    while (done < total) {
      uint16_t seen = ring.used_idx();
      if (seen == ring.last_used) {
        if (rdtsc() > limit) {
          return void(fail(r, "%s: depth %lu: no completion in 5 s (%lu done, used idx %u)",
                           d->name(), depth, done, seen));
        }
        if (wait == Wait::Hlt) {
          asm volatile("sti; hlt; cli" ::: "memory");  // woken by the completion interrupt
        } else {
          pause();
        }
        continue;
      }
      barrier();  // the elements after the index
      bool added = false;
      while (ring.last_used != seen) {
        uint32_t id = ring.used_id(ring.last_used++);
        uint16_t s = static_cast<uint16_t>(id / 3);
        if (id % 3 != 0 || s >= depth) {
          return void(fail(r, "%s: used id %u is no request head", d->name(), id));
        }
        if (status[s] != VirtioBlk::kOk) {
          return void(
              fail(r, "%s: read of sector %lu: status %u", d->name(), hdr[s].sector, status[s]));
        }
        if (++done == warm) t0 = rdtsc();
        if (submitted < total) {
          submit(s);
          ++submitted;
          added = true;
        }
      }
      if (added) {
        ring.publish();
        if (ring.kick_needed()) d->transport().notify(0);
      }
      limit = rdtsc() + 5000ULL * tsc_khz();
    }
    uint64_t t1 = rdtsc();
    char extra[48];
    snprintf(extra, sizeof extra, "depth=%lu wait=%s", depth, wait_name);
    bench_report("blk", extra, count, t1 - t0);
  }
}

}  // namespace guest
