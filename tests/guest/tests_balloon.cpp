// virtio-balloon (virtio 1.2 section 5.5): the guest inflates the balloon to the device's target
// and deflates it again, so that the host can watch the monitor's memory go and come back.
//
//  1. num_pages (the target) is read from the device configuration after DRIVER_OK; the
//     device's configuration-change interrupt announcing it must arrive (MSI-X entry 0).
//  2. That many pages of free RAM (above the guest image, below 4 GiB) are written, one word per
//     page, so that the host really backs them; the guest prints "touched" and holds
//     balloon.hold.ms (the host samples its RSS: the peak).
//  3. A buffer of PFNs outside RAM (past its end, in the PCI hole, at the local APIC, the
//     largest PFN) goes to the inflate queue first: the device must return it and keep working.
//  4. The pages are inflated in buffers of 1024 PFNs (the first buffer names its first PFN twice),
//     then one more buffer repeats three PFNs already in the balloon; `actual` is written and
//     read back; the guest prints "inflated" and holds balloon.hold.ms again (the host samples
//     its RSS: it must have dropped by most of the balloon).
//  5. The pages are deflated, `actual` is set to 0, and every page is written and read back.
// The device status must never show DEVICE_NEEDS_RESET.
//
// virtio-balloon-follow (explicit only) follows the host's target while the guest runs, as
// Linux's driver does: it touches balloon.touch.mib MiB of free RAM (the host backs it), posts a
// statistics buffer when VIRTIO_BALLOON_F_STATS_VQ is offered (5.5.6.3: MEMTOT, its RAM, and
// MEMFREE, the free RAM it did not touch), then for balloon.follow.ms (0: until ember stops)
// inflates or deflates to every new num_pages, writes `actual`, prints
// `virtio-balloon-follow: at N pages`, and refills and posts again each statistics buffer the
// device returns (the device's way of asking for fresh numbers).
#include "tests.h"
#include "virtio_device.h"

extern "C" char __image_end[];

namespace guest {

namespace {

constexpr uint16_t kVirtioTypeBalloon = 5;
constexpr uint16_t kInflateQ = 0, kDeflateQ = 1, kStatsQ = 2;
constexpr unsigned kFStatsVq = 1;                      // VIRTIO_BALLOON_F_STATS_VQ
constexpr uint16_t kStatMemFree = 4, kStatMemTot = 5;  // 5.5.6.3 tags
constexpr uint32_t kPfnsPerBuffer = 1024;              // one page of 32-bit PFNs
constexpr uint16_t kBufferPages = 8;                   // PFN buffers in flight at most
constexpr uint64_t kMaxBalloonPages = 1ULL << 20;
constexpr uint64_t kTouchMagic = 0x62616c6c6f6f6e00ULL;  // "balloon"

uint32_t* g_pfn_bufs = nullptr;

// Free RAM the balloon may take: up to 8 ranges of page frames.
struct PageRanges {
  struct Range {
    uint64_t first, count;
  } r[8];
  uint32_t n = 0;
  uint64_t total = 0;
  uint64_t ram_end_pfn = 0;  // first PFN past the highest RAM
  uint64_t pfn(uint64_t k) const {
    for (uint32_t i = 0; i < n; ++i) {
      if (k < r[i].count) return r[i].first + k;
      k -= r[i].count;
    }
    return ~0ULL;
  }
};

PageRanges free_ram() {
  PageRanges pr;
  uint64_t image_end = reinterpret_cast<uint64_t>(__image_end);
  uint64_t lo_limit = ((image_end + (2ULL << 20) - 1) & ~((2ULL << 20) - 1)) + (2ULL << 20);
  for (uint32_t i = 0; i < boot_info.memmap_entries; ++i) {
    const MemRange& e = boot_info.memmap[i];
    if (e.type != 1 || e.size == 0) continue;
    uint64_t end = e.addr + e.size;
    if ((end >> 12) > pr.ram_end_pfn) pr.ram_end_pfn = end >> 12;
    uint64_t lo = e.addr > lo_limit ? e.addr : lo_limit;
    uint64_t hi = end < (4ULL << 30) ? end : (4ULL << 30);  // identity-mapped, 32-bit PFNs
    lo = (lo + 4095) & ~4095ULL;
    hi &= ~4095ULL;
    if (hi <= lo || pr.n == 8) continue;
    pr.r[pr.n++] = {lo >> 12, (hi - lo) >> 12};
    pr.total += (hi - lo) >> 12;
  }
  return pr;
}

bool is_ram_pfn(uint64_t pfn) {
  for (uint32_t i = 0; i < boot_info.memmap_entries; ++i) {
    const MemRange& e = boot_info.memmap[i];
    if (e.type == 1 && pfn >= (e.addr >> 12) && pfn < ((e.addr + e.size) >> 12)) return true;
  }
  return false;
}

// Device configuration writes (the transport reads it only): `actual` is driver-writable
// (5.5.4). Legacy: after the header in BAR0; modern: the device configuration capability.
void cfg_write32(VirtioPci& t, uint32_t off, uint32_t v) {
  if (t.face() == VirtioFace::Legacy) {
    return outl(static_cast<uint16_t>(t.io_base() + (t.msix_enabled() ? 24 : 20) + off), v);
  }
  PciBus& bus = PciBus::get();
  PciFunction* f = t.function();
  for (uint8_t cap = bus.find_capability(*f, pcicfg::kCapVendor); cap != 0;
       cap = bus.find_capability(*f, pcicfg::kCapVendor, cap)) {
    uint8_t bar = bus.read8(*f, cap + 4);
    if (bus.read8(*f, cap + 3) == 4 && bar <= 5 && f->bar[bar].addr != 0) {
      return mmio_write<uint32_t>(f->bar[bar].addr + bus.read32(*f, cap + 8) + off, v);
    }
  }
}

bool healthy(VirtioDevice* d, const char* when, TestResult& r) {
  uint8_t s = d->transport().status();
  if (s & (vstatus::kNeedsReset | vstatus::kFailed)) {
    return fail(r, "%s: status %x %s", d->name(), s, when);
  }
  return true;
}

// Sends `count` PFNs produced by `pfn_of(k)` on queue `q` in buffers of kPfnsPerBuffer (the
// first buffer may carry `extra` PFNs after them), at most kBufferPages buffers in flight.
template <typename PfnOf>
bool send_pfns(VirtioDevice* d, uint16_t q, uint64_t count, PfnOf pfn_of, const uint32_t* extra,
               uint32_t extra_n, TestResult& r) {
  uint64_t k = 0;
  uint16_t in_flight = 0, next_buf = 0;
  bool first = true;
  while (k < count || first || in_flight != 0) {
    if ((k < count || first) && in_flight < kBufferPages) {
      uint32_t* b = g_pfn_bufs + static_cast<uint64_t>(next_buf) * kPfnsPerBuffer;
      next_buf = static_cast<uint16_t>((next_buf + 1) % kBufferPages);
      uint32_t n = 0;
      while (k < count && n < kPfnsPerBuffer - (first ? extra_n : 0))
        b[n++] = static_cast<uint32_t>(pfn_of(k++));
      if (first) {
        for (uint32_t i = 0; i < extra_n; ++i) b[n++] = extra[i];
        first = false;
      }
      if (n == 0) continue;
      VqSeg s{reinterpret_cast<uint64_t>(b), n * 4, false};
      if (d->queue(q).add(&s, 1, false) < 0) return fail(r, "%s: queue %u full", d->name(), q);
      d->kick(q);
      ++in_flight;
      continue;
    }
    uint16_t head;
    uint32_t len;
    if (!d->wait_used(q, &head, &len, VirtioDevice::kTimeoutMs, r)) return false;
    --in_flight;
  }
  return true;
}

}  // namespace

bool balloon_present() {
  return VirtioDevice::find(kVirtioTypeBalloon) != nullptr;
}

void test_virtio_balloon(TestResult& r) {
  VirtioDevice* d = VirtioDevice::find(kVirtioTypeBalloon);
  if (d == nullptr) return void(fail(r, "no virtio-balloon device"));
  if (g_pfn_bufs == nullptr) {
    g_pfn_bufs = static_cast<uint32_t*>(alloc_pages_uninit(kBufferPages));
    if (g_pfn_bufs == nullptr) return void(fail(r, "out of pages"));
  }
  uint64_t hold_ms = cmdline_number("balloon.hold.ms", 0);
  DeviceSession session{d};
  // MSI-X when the device has it (Ember's does), else INTx with the ISR (QEMU's balloon).
  bool msix = d->transport().msix().attached();
  if (!d->begin(0, msix, r) || !d->setup_queues(2, 64, 0, r)) return;
  uint32_t cfg_irqs = irq_counts[d->config_vector()];
  if (!d->driver_ok(r)) return;
  sti();
  VirtioPci& t = d->transport();
  uint32_t target = t.cfg32(0);
  if (target == 0) return void(fail(r, "%s: num_pages is 0 (no balloon target)", d->name()));
  if (target > kMaxBalloonPages)
    return void(fail(r, "%s: num_pages %u too large for this test", d->name(), target));
  bool cfg_irq = false;
  if (msix) {
    cfg_irq = wait_until(&irq_counts[d->config_vector()], cfg_irqs + 1, 1000);
  } else {
    uint64_t end = rdtsc() + 1000 * tsc_khz();
    while (!cfg_irq && rdtsc() < end) cfg_irq = (t.isr() & 2) != 0;  // 4.1.4.5: config change
  }
  if (!cfg_irq) {
    return void(fail(r, "%s: no configuration-change interrupt announcing num_pages %u", d->name(),
                     target));
  }
  PageRanges pr = free_ram();
  if (pr.total < target) {
    return void(
        fail(r, "%s: target %u pages, only %lu free above the image", d->name(), target, pr.total));
  }

  // 2. Touch every page the balloon will take.
  for (uint64_t k = 0; k < target; ++k) {
    uint64_t pfn = pr.pfn(k);
    *reinterpret_cast<volatile uint64_t*>(pfn << 12) = kTouchMagic ^ pfn;
  }
  for (uint64_t k = 0; k < target; ++k) {
    uint64_t pfn = pr.pfn(k);
    if (*reinterpret_cast<volatile uint64_t*>(pfn << 12) != (kTouchMagic ^ pfn)) {
      return void(fail(r, "page %lx does not hold what was written", pfn));
    }
  }
  printf("virtio-balloon: %s target %u pages (%u MiB), touched pfn %lx.. (%u ranges)\n", d->name(),
         target, target >> 8, pr.pfn(0), pr.n);
  delay_us(hold_ms * 1000);

  // 3. PFNs outside RAM first.
  uint32_t bad[5];
  uint32_t nbad = 0;
  const uint64_t candidates[] = {pr.ram_end_pfn, 0xc0000, 0xfee00, 0x7fffffff, 0xffffffff};
  for (uint64_t c : candidates) {
    if (c <= 0xffffffff && !is_ram_pfn(c)) bad[nbad++] = static_cast<uint32_t>(c);
  }
  if (!send_pfns(
          d, kInflateQ, 0, [](uint64_t) { return 0ULL; }, bad, nbad, r))
    return;
  if (!healthy(d, "after PFNs outside RAM", r)) return;

  // 4. Inflate; the first buffer repeats its first PFN, a last one repeats three.
  uint32_t again[3] = {static_cast<uint32_t>(pr.pfn(0)), static_cast<uint32_t>(pr.pfn(target / 2)),
                       static_cast<uint32_t>(pr.pfn(target - 1))};
  uint64_t t0 = rdtsc();
  if (!send_pfns(
          d, kInflateQ, target, [&](uint64_t k) { return pr.pfn(k); }, again, 1, r))
    return;
  uint64_t t1 = rdtsc();
  if (!send_pfns(
          d, kInflateQ, 0, [](uint64_t) { return 0ULL; }, again, 3, r))
    return;
  if (!healthy(d, "after inflating", r)) return;
  cfg_write32(t, 4, target);
  uint32_t actual = t.cfg32(4);
  if (actual != target)
    return void(fail(r, "%s: actual reads %u after writing %u", d->name(), actual, target));
  printf(
      "virtio-balloon: inflated %u pages in %lu ms (+%u PFNs outside RAM, 4 repeated), actual %u\n",
      target, (t1 - t0) / tsc_khz(), nbad, actual);
  delay_us(hold_ms * 1000);

  // 5. Deflate and use the pages again.
  if (!send_pfns(
          d, kDeflateQ, target, [&](uint64_t k) { return pr.pfn(k); }, nullptr, 0, r))
    return;
  cfg_write32(t, 4, 0);
  if (t.cfg32(4) != 0)
    return void(fail(r, "%s: actual reads %u after writing 0", d->name(), t.cfg32(4)));
  for (uint64_t k = 0; k < target; ++k) {
    uint64_t pfn = pr.pfn(k);
    auto* p = reinterpret_cast<volatile uint64_t*>(pfn << 12);
    *p = ~(kTouchMagic ^ pfn);
    if (*p != ~(kTouchMagic ^ pfn))
      return void(fail(r, "deflated page %lx does not hold data", pfn));
  }
  if (!healthy(d, "after deflating", r)) return;
  printf("virtio-balloon: deflated %u pages, actual 0, pages usable again\n", target);
}

namespace {

// struct virtio_balloon_stat (5.5.6.3): le16 tag, le64 val, packed.
struct [[gnu::packed]] BalloonStat {
  uint16_t tag;
  uint64_t val;
};
BalloonStat* g_stats = nullptr;

bool post_stats(VirtioDevice* d, uint64_t total, uint64_t free, TestResult& r) {
  g_stats[0] = {kStatMemTot, total};
  g_stats[1] = {kStatMemFree, free};
  VqSeg s{reinterpret_cast<uint64_t>(g_stats), 2 * sizeof(BalloonStat), false};
  if (d->queue(kStatsQ).add(&s, 1, false) < 0) return fail(r, "%s: stats queue full", d->name());
  d->kick(kStatsQ);
  return true;
}

}  // namespace

void test_virtio_balloon_follow(TestResult& r) {
  VirtioDevice* d = VirtioDevice::find(kVirtioTypeBalloon);
  if (d == nullptr) return void(fail(r, "no virtio-balloon device"));
  if (g_pfn_bufs == nullptr) {
    g_pfn_bufs = static_cast<uint32_t*>(alloc_pages_uninit(kBufferPages));
    g_stats = static_cast<BalloonStat*>(alloc_pages_uninit(1));
    if (g_pfn_bufs == nullptr || g_stats == nullptr) return void(fail(r, "out of pages"));
  }
  const uint64_t touch = cmdline_number("balloon.touch.mib", 64) << 8;
  const uint64_t follow_ms = cmdline_number("balloon.follow.ms", 0);
  DeviceSession session{d};
  bool msix = d->transport().msix().attached();
  if (!d->begin(1ULL << kFStatsVq, msix, r)) return;
  const bool stats = d->has(kFStatsVq);
  if (!d->setup_queues(stats ? 3 : 2, 64, 0, r) || !d->driver_ok(r)) return;
  VirtioPci& t = d->transport();
  PageRanges pr = free_ram();
  if (pr.total < touch) {
    return void(fail(r, "%lu pages to touch, only %lu free above the image", touch, pr.total));
  }
  for (uint64_t k = 0; k < touch; ++k) {
    uint64_t pfn = pr.pfn(k);
    *reinterpret_cast<volatile uint64_t*>(pfn << 12) = kTouchMagic ^ pfn;
  }
  uint64_t ram = 0;
  for (uint32_t i = 0; i < boot_info.memmap_entries; ++i) {
    if (boot_info.memmap[i].type == 1) ram += boot_info.memmap[i].size;
  }
  const uint64_t free_bytes = (pr.total - touch) << 12;
  printf(
      "virtio-balloon-follow: touched %lu pages; statistics %s: total_memory=%lu "
      "free_memory=%lu\n",
      touch, stats ? "offered" : "not offered", ram, free_bytes);
  if (stats && !post_stats(d, ram, free_bytes, r)) return;
  uint64_t inflated = 0;  // the balloon holds pr.pfn(0 .. inflated-1)
  const uint64_t end = follow_ms ? rdtsc() + follow_ms * tsc_khz() : ~0ULL;
  while (rdtsc() < end) {
    uint64_t target = t.cfg32(0);
    if (target > pr.total) {
      return void(
          fail(r, "%s: num_pages %lu beyond the %lu free pages", d->name(), target, pr.total));
    }
    if (target != inflated) {
      bool up = target > inflated;
      uint64_t from = up ? inflated : target, n = up ? target - inflated : inflated - target;
      if (!send_pfns(
              d, up ? kInflateQ : kDeflateQ, n, [&](uint64_t k) { return pr.pfn(from + k); },
              nullptr, 0, r))
        return;
      if (!up) {
        // Deflated pages are the guest's again: use them.
        for (uint64_t k = 0; k < n; ++k) {
          uint64_t pfn = pr.pfn(from + k);
          *reinterpret_cast<volatile uint64_t*>(pfn << 12) = kTouchMagic ^ pfn;
        }
      }
      inflated = target;
      cfg_write32(t, 4, static_cast<uint32_t>(inflated));
      if (!healthy(d, "after following the target", r)) return;
      printf("virtio-balloon-follow: at %lu pages\n", inflated);
    }
    uint16_t head;
    uint32_t len;
    char why[96];
    if (stats) {
      int got = d->queue(kStatsQ).pop(&head, &len, why, sizeof why);
      if (got < 0) return void(fail(r, "%s: stats queue: %s", d->name(), why));
      if (got == 1) {
        printf("virtio-balloon-follow: statistics asked for, posted again\n");
        if (!post_stats(d, ram, free_bytes, r)) return;
      }
    }
    delay_us(2000);
  }
}

}  // namespace guest
