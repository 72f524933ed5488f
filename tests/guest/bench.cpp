// bench-kick, bench-irq and bench-exit (see bench.h). The timed loops are a few instructions of
// inline assembly, identical whichever monitor runs the guest: on a host where guest kernel code
// is instruction-emulated (PVM) every instruction in them counts, so they must not differ between
// the floor and a real VMM.
#include "bench.h"

#include "tests.h"
#include "virtio_blk.h"
#include "virtio_device.h"

namespace guest {

namespace {

constexpr uint16_t kLegacyQueueNotify = 16;  // virtio 1.2 4.1.4.10

// kick-floor passes the addresses it counts writes to; a real VMM passes neither.
bool floor_target(KickTarget* k) {
  uint64_t port = cmdline_number("kick.port", 0), mmio = cmdline_number("kick.mmio", 0);
  if (port == 0 && mmio == 0) return false;
  *k = KickTarget{};
  if (virtio_face() == VirtioFace::Legacy) {
    k->port = static_cast<uint16_t>(port);
  } else {
    k->mmio = mmio;
  }
  return k->port != 0 || k->mmio != 0;
}

// The notify register of queue 0 of a device at DRIVER_OK, on the face in use.
bool virtio_target(VirtioDevice* d, KickTarget* k, TestResult& r) {
  *k = KickTarget{};
  VirtioPci& t = d->transport();
  if (t.face() == VirtioFace::Legacy) {
    k->port = static_cast<uint16_t>(t.io_base() + kLegacyQueueNotify);
  } else {
    k->mmio = t.notify_addr(0);
  }
  return k->port != 0 || k->mmio != 0 || fail(r, "%s: no notify address for queue 0", d->name());
}

void print_decimal_tenths(uint64_t tenths) {
  printf("%lu.%lu", tenths / 10, tenths % 10);
}

}  // namespace

void kick_loop(const KickTarget& k, uint64_t count) {
  if (count == 0) return;
  if (k.port != 0) {
    asm volatile("1: outw %%ax, %%dx\n\tdec %%rcx\n\tjnz 1b"
                 : "+c"(count)
                 : "a"(k.value), "d"(k.port)
                 : "memory", "cc");
  } else {
    asm volatile("1: movw %%ax, (%%rbx)\n\tdec %%rcx\n\tjnz 1b"
                 : "+c"(count)
                 : "a"(k.value), "b"(k.mmio)
                 : "memory", "cc");
  }
}

void kick_once(const KickTarget& k) {
  if (k.port != 0) {
    outw(k.port, k.value);
  } else {
    mmio_write<uint16_t>(k.mmio, k.value);
  }
}

void bench_report(const char* name, const char* extra, uint64_t count, uint64_t cycles) {
  uint64_t khz = tsc_khz();
  // Tenths of a nanosecond per operation: cycles * 1e7 / (khz * count), without overflow for
  // any run shorter than a few hours.
  uint64_t tenths = count == 0 || khz == 0 ? 0 : cycles * 10000 / khz * 1000 / count;
  printf("BENCH %s face=%s%s%s count=%lu cycles=%lu tsc_khz=%lu tsc=%s ns=", name,
         face_name(virtio_face()), extra[0] ? " " : "", extra, count, cycles, khz, tsc_source());
  print_decimal_tenths(tenths);
  printf("\n");
}

// ---- bench-kick ----

void test_bench_kick(TestResult& r) {
  uint64_t count = cmdline_number("kick.count", 20000);
  KickTarget k;
  VirtioDevice* d = nullptr;
  VirtioBlk blk;
  if (!floor_target(&k)) {
    // A virtio-blk device at DRIVER_OK whose queue 0 stays empty: every kick makes the device
    // look at the available ring and find nothing.
    d = VirtioBlk::find(VirtioBlk::Pick::Any);
    if (d == nullptr) return void(fail(r, "no virtio-blk device and no kick.port/kick.mmio"));
    if (!blk.init(d, 1, true, r) || !virtio_target(d, &k, r)) return;
  }
  DeviceSession session{d};
  // kick.rounds: that many timed loops, each reported with its round number and followed by
  // kick.gap_ms of spinning (a host that switches the kick path between rounds does it in the
  // gap: tools/bench's switch row).
  const uint64_t rounds = cmdline_number("kick.rounds", 1),
                 gap_ms = cmdline_number("kick.gap_ms", 0);
  (void)tsc_khz();                // calibrated outside the timed loop
  kick_loop(k, count / 100 + 1);  // warm-up
  for (uint64_t round = 1; round <= rounds; ++round) {
    uint64_t t0 = rdtsc();
    kick_loop(k, count);
    uint64_t t1 = rdtsc();
    char extra[32] = "";
    if (rounds > 1) snprintf(extra, sizeof extra, "round=%lu", round);
    bench_report("kick", extra, count, t1 - t0);
    uint64_t end = rdtsc() + gap_ms * tsc_khz();  // after the last round too: its counters
    while (rdtsc() < end) asm volatile("pause");  // are read before the guest exits
  }
}

// ---- bench-irq ----

namespace {

// A one-descriptor split ring driven directly (the Virtqueue's memory, set up by the driver):
// per round trip only the available entry and index are written, as few instructions as the
// floor's dummy ring costs.
struct TinyRing {
  volatile uint16_t* avail = nullptr;  // flags, idx, ring[size]
  volatile uint16_t* used = nullptr;   // flags, idx, ring of {le32 id, le32 len}
  uint16_t size = 1;
  uint16_t idx = 0;
  void publish() {
    avail[2 + (idx & (size - 1))] = 0;
    barrier();
    ++idx;
    avail[1] = idx;
  }
};

volatile uint32_t g_irq_taken = 0;
void on_bench_irq(uint8_t) {
  g_irq_taken = g_irq_taken + 1;
}

}  // namespace

void test_bench_irq(TestResult& r) {
  uint64_t count = cmdline_number("irq.count", 10000);
  char wait_mode[8] = "hlt";
  cmdline_get("irq.wait", wait_mode, sizeof wait_mode);
  bool spin = wait_mode[0] == 's';
  KickTarget k;
  TinyRing ring;
  VirtioDevice* d = nullptr;
  uint8_t vector = 0;
  if (floor_target(&k)) {
    vector = static_cast<uint8_t>(cmdline_number("kick.irq", 0));
    if (vector < 32) return void(fail(r, "kick-floor gave no interrupt vector (kick.irq=)"));
    auto* dummy = static_cast<uint16_t*>(alloc_pages(1));
    if (dummy == nullptr) return void(fail(r, "out of pages"));
    ring.avail = dummy;
    ring.used = dummy + 1024;
  } else {
    // The smallest request that completes with an MSI-X interrupt: one byte of entropy.
    d = VirtioDevice::find(kVirtioTypeRng);
    if (d == nullptr) return void(fail(r, "no virtio-rng device and no kick.port/kick.mmio"));
    if (!d->begin(0, true, r) || !d->setup_queues(1, 64, 0, r) || !d->driver_ok(r)) return;
    if (!virtio_target(d, &k, r)) return;
    Virtqueue& q = d->queue(0);
    auto* buf = static_cast<uint8_t*>(alloc_pages(1));
    if (buf == nullptr) return void(fail(r, "out of pages"));
    struct Desc {
      uint64_t addr;
      uint32_t len;
      uint16_t flags, next;
    };
    // Descriptor 0, reused by every request: 1 device-writable byte.
    auto* desc = reinterpret_cast<volatile Desc*>(q.desc_addr());
    desc[0].addr = reinterpret_cast<uint64_t>(buf);
    desc[0].len = 1;
    desc[0].flags = Virtqueue::kDescWrite;
    desc[0].next = 0;
    ring.avail = reinterpret_cast<volatile uint16_t*>(q.avail_addr());
    ring.used = reinterpret_cast<volatile uint16_t*>(q.used_addr());
    ring.size = q.size();
    vector = d->queue_vector(0);
  }
  DeviceSession session{d};
  IrqHandler handler = on_bench_irq;
  set_irq_handler(vector, handler);
  (void)tsc_khz();
  uint64_t warm = count / 100 + 1, total = warm + count, t0 = 0;
  uint64_t limit = rdtsc() + 5000ULL * tsc_khz();  // 5 s without an interrupt: give up
  cli();
  for (uint64_t i = 0; i < total; ++i) {
    if (i == warm) t0 = rdtsc();
    uint32_t before = g_irq_taken;
    ring.publish();
    kick_once(k);
    if (spin) {
      sti();
      while (g_irq_taken == before && rdtsc() < limit) pause();
      cli();
    } else {
      // sti's interrupt shadow covers hlt: an interrupt already pending wakes it, none is lost.
      // (Unbounded: nothing else wakes the CPU; the host runs every benchmark with a timeout.)
      while (g_irq_taken == before) asm volatile("sti; hlt; cli" ::: "memory");
    }
    if (g_irq_taken == before) {
      set_irq_handler(vector, nullptr);
      return void(fail(r, "no interrupt on vector %x for round trip %lu", vector, i));
    }
    if (d != nullptr) {
      // The used element is written before the interrupt is sent.
      while (ring.used[1] != ring.idx) {
        if (rdtsc() > limit) {
          set_irq_handler(vector, nullptr);
          return void(fail(r, "%s: interrupt %lu arrived before its used element", d->name(), i));
        }
        pause();
      }
    }
    if ((i & 1023) == 0) limit = rdtsc() + 5000ULL * tsc_khz();
  }
  uint64_t t1 = rdtsc();
  set_irq_handler(vector, nullptr);
  bench_report("irq", spin ? "wait=spin" : "wait=hlt", count, t1 - t0);
}

// ---- bench-exit ----

// Reached only when other tests come before it on the command line (else main() exits first).
void test_bench_exit(TestResult&) {
  exit(0);
}

bool bench_exit_requested() {
  char list[16];
  return cmdline_get("tests", list, sizeof list) && strlen(list) == 10 &&
         memcmp(list, "bench-exit", 10) == 0;
}

}  // namespace guest
