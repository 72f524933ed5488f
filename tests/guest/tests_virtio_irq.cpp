// Interrupt delivery from virtio devices. virtio-msix (PCI 3.0 section 6.8.2, virtio 1.2
// 4.1.5.1.2 / 4.1.5.3): with one MSI-X entry per queue, every interrupt arrives on the vector of
// the queue that completed and none elsewhere; a masked entry delivers nothing but sets its
// Pending Bit, and unmasking delivers it and clears the bit. virtio-intx (4.1.5.3 / 4.1.5.5):
// with MSI-X off, a completion sets ISR bit 0 and the PCI Interrupt Status bit and raises INTx
// through the I/O APIC (GSI = the Interrupt Line register, or `intx.gsi=N`), level-triggered:
// reading ISR clears it and deasserts the line.
#include "ioapic.h"
#include "tests.h"
#include "virtio_blk.h"

namespace guest {

namespace {

// One request on queue `q`, waited for by polling the used ring: a 4 KiB read from a disk, or
// 16 bytes from an entropy device.
bool one_io(VirtioDevice* d, VirtioBlk* blk, uint16_t q, uint16_t k, TestResult& r) {
  uint8_t* buf = VirtioBlk::slot_buffer(k % VirtioBlk::kMaxSlots);
  if (buf == nullptr) return fail(r, "out of pages");
  if (blk != nullptr) {
    if (blk->submit(q, VirtioBlk::kIn, 8ULL * k, buf, 4096, 1, false) < 0) {
      return fail(r, "%s: cannot queue a read on queue %u", d->name(), q);
    }
    blk->kick(q);
    int slot;
    uint8_t status;
    uint32_t len;
    if (!blk->complete(q, &slot, &status, &len, r)) return false;
    return status == VirtioBlk::kOk || fail(r, "%s: read status %u", d->name(), status);
  }
  VqSeg s{reinterpret_cast<uint64_t>(buf), 16, true};
  if (d->queue(q).add(&s, 1, false) < 0) return fail(r, "%s: queue %u full", d->name(), q);
  d->kick(q);
  uint16_t head;
  uint32_t len;
  return d->wait_used(q, &head, &len, VirtioDevice::kTimeoutMs, r);
}

uint32_t g_before[256];

VirtioDevice* g_intx_device = nullptr;
volatile uint32_t g_intx_count = 0, g_intx_ours = 0;
volatile uint8_t g_intx_isr = 0;
constexpr uint8_t kIntxVector = 0xe0;

void on_intx(uint8_t) {
  // 4.1.5.5: read ISR (which deasserts the line) before the EOI the runtime sends. The line
  // may be shared: only interrupts with ISR bits set are this device's.
  g_intx_count = g_intx_count + 1;
  if (g_intx_device == nullptr) return;
  uint8_t isr = g_intx_device->transport().isr();
  g_intx_isr = static_cast<uint8_t>(g_intx_isr | isr);
  if (isr != 0) g_intx_ours = g_intx_ours + 1;
}

}  // namespace

bool msix_device_present() {
  return VirtioBlk::find(VirtioBlk::Pick::Any) != nullptr ||
         VirtioDevice::find(kVirtioTypeRng) != nullptr;
}

void test_virtio_msix(TestResult& r) {
  VirtioDevice* d = VirtioBlk::find(VirtioBlk::Pick::Any);
  VirtioBlk blk;
  VirtioBlk* b = d != nullptr ? &blk : nullptr;
  if (d == nullptr) d = VirtioDevice::find(kVirtioTypeRng);
  if (d == nullptr) return void(fail(r, "no virtio-blk or virtio-rng device"));
  DeviceSession session{d};
  if (b != nullptr) {
    if (!blk.init(d, VirtioDevice::kMaxQueues, true, r)) return;
  } else if (!d->begin(0, true, r) || !d->setup_queues(1, 64, 0, r) || !d->driver_ok(r)) {
    return;
  }
  Msix& msix = d->transport().msix();
  uint16_t nq = d->queue_count();
  for (int v = 0; v < 256; ++v) g_before[v] = irq_counts[v];
  sti();
  for (uint16_t q = 0; q < nq; ++q) {
    uint8_t vec = d->queue_vector(q);
    for (uint16_t k = 0; k < 4; ++k) {
      if (!one_io(d, b, q, k, r)) return;
    }
    if (!wait_until(&irq_counts[vec], g_before[vec] + 1, 1000)) {
      return void(fail(r, "%s: no interrupt on vector %x (MSI-X entry %u) for queue %u", d->name(),
                       vec, d->queue_entry(q), q));
    }
  }
  delay_us(10000);
  for (int v = 32; v < 256; ++v) {
    uint32_t delta = irq_counts[v] - g_before[v];
    bool expected = false;
    for (uint16_t q = 0; q < nq; ++q) expected = expected || v == d->queue_vector(q);
    if (delta != 0 && !expected) {
      return void(fail(r, "%s: %u interrupt(s) on vector %x, which no queue uses (config %x)",
                       d->name(), delta, v, d->config_vector()));
    }
  }
  // Per-vector mask (PCI 3.0 6.8.2, Vector Control and Pending Bits): a masked entry's message
  // waits in the PBA until the entry is unmasked.
  uint16_t e = d->queue_entry(0);
  uint8_t vec = d->queue_vector(0);
  msix.mask(e, true);
  if (!msix.masked(e))
    return void(fail(r, "%s: mask bit of entry %u does not stick", d->name(), e));
  uint32_t c0 = irq_counts[vec];
  if (!one_io(d, b, 0, 5, r)) return;
  delay_us(20000);
  if (irq_counts[vec] != c0) {
    return void(fail(r, "%s: interrupt delivered while entry %u was masked", d->name(), e));
  }
  if (!msix.pending(e)) {
    return void(fail(r, "%s: PBA bit %u not set for a masked interrupt", d->name(), e));
  }
  msix.mask(e, false);
  if (!wait_until(&irq_counts[vec], c0 + 1, 1000)) {
    return void(
        fail(r, "%s: pending interrupt not delivered when entry %u was unmasked", d->name(), e));
  }
  delay_us(1000);
  if (msix.pending(e))
    return void(fail(r, "%s: PBA bit %u still set after delivery", d->name(), e));
  printf("virtio-msix: %s, %u queue(s), %u table entries, vectors", d->name(), nq,
         msix.table_size());
  for (uint16_t q = 0; q < nq; ++q) {
    printf(" q%u:%x(%u)", q, d->queue_vector(q),
           irq_counts[d->queue_vector(q)] - g_before[d->queue_vector(q)]);
  }
  printf("; masked interrupt held pending and delivered on unmask\n");
}

void test_virtio_intx(TestResult& r) {
  VirtioDevice* d = VirtioBlk::find(VirtioBlk::Pick::Any);
  if (d == nullptr) return void(fail(r, "no virtio-blk device"));
  if (!d->attached()) return void(fail(r, "%s: %s", d->name(), d->attach_error()));
  PciFunction& f = *d->transport().function();
  PciBus& bus = PciBus::get();
  if (f.int_pin == 0) return void(fail(r, "%s has no INTx pin", d->name()));
  char v[16];
  uint64_t gsi = f.int_line;
  if (cmdline_get("intx.gsi", v, sizeof v)) {
    if (!parse_u64(v, &gsi)) return void(fail(r, "bad intx.gsi=%s", v));
  } else if (gsi == 0 || gsi == 0xff) {
    return void(fail(r, "%s: Interrupt Line is %lu; give intx.gsi=N", d->name(), gsi));
  }
  uint32_t pins = Ioapic::entries();
  if (pins == 0) return void(fail(r, "no I/O APIC answers at %lx", Ioapic::kBase));
  if (gsi >= pins) return void(fail(r, "GSI %lu beyond the I/O APIC's %u entries", gsi, pins));
  DeviceSession session{d};
  VirtioBlk blk;
  if (!blk.init(d, 1, false, r)) return;
  if (d->transport().msix().enabled()) return void(fail(r, "%s: MSI-X still enabled", d->name()));
  if (bus.read16(f, pcicfg::kCommand) & pcicfg::kCmdIntxDisable) {
    return void(fail(r, "%s: INTx Disable still set", d->name()));
  }
  uint32_t g = static_cast<uint32_t>(gsi);
  g_intx_device = d;
  g_intx_count = 0;
  g_intx_ours = 0;
  g_intx_isr = 0;
  set_irq_handler(kIntxVector, on_intx);
  Ioapic::route_level(g, kIntxVector, apic_id(), true);
  sti();
  // Masked at the I/O APIC: the state is visible in ISR and the PCI status register.
  (void)d->transport().isr();
  if (!one_io(d, &blk, 0, 1, r)) goto out;
  delay_us(1000);
  {
    uint16_t status = bus.read16(f, pcicfg::kStatus);
    uint8_t isr1 = d->transport().isr(), isr2 = d->transport().isr();
    uint16_t status2 = bus.read16(f, pcicfg::kStatus);
    if (!(isr1 & 1)) {
      fail(r, "%s: ISR %x after a completion, queue bit clear", d->name(), isr1);
      goto out;
    }
    if (isr2 != 0) {
      fail(r, "%s: ISR %x on the second read, not cleared", d->name(), isr2);
      goto out;
    }
    if (!(status & pcicfg::kStatusIntx)) {
      fail(r, "%s: PCI status %x lacks Interrupt Status with ISR set", d->name(), status);
      goto out;
    }
    if (status2 & pcicfg::kStatusIntx) {
      fail(r, "%s: PCI status %x keeps Interrupt Status after ISR read", d->name(), status2);
      goto out;
    }
    if (g_intx_count != 0) {
      fail(r, "%s: interrupt through a masked I/O APIC entry", d->name());
      goto out;
    }
  }
  // Unmasked: the completion interrupts through the I/O APIC; the handler's ISR read ends it.
  Ioapic::mask(g, false);
  if (!one_io(d, &blk, 0, 2, r)) goto out;
  if (!wait_until(&g_intx_ours, 1, 1000)) {
    fail(r, "%s: no interrupt with ISR set on GSI %u (%u taken, entry %lx)", d->name(), g,
         g_intx_count, Ioapic::entry(g));
    goto out;
  }
  delay_us(20000);
  if (!(g_intx_isr & 1)) {
    fail(r, "%s: handler read ISR %x", d->name(), g_intx_isr);
    goto out;
  }
  {
    // Level-triggered: once ISR was read the line is low, so interrupts stop.
    uint32_t settled = g_intx_count;
    delay_us(20000);
    if (g_intx_count != settled) {
      fail(r, "%s: interrupts keep arriving (%u -> %u): line not deasserted", d->name(), settled,
           g_intx_count);
      goto out;
    }
  }
  if (bus.read16(f, pcicfg::kStatus) & pcicfg::kStatusIntx) {
    fail(r, "%s: Interrupt Status still set after the handler", d->name());
    goto out;
  }
  printf("virtio-intx: %s pin %c GSI %u vector %x: %u interrupt(s), %u with ISR %x\n", d->name(),
         'A' + f.int_pin - 1, g, kIntxVector, g_intx_count, g_intx_ours, g_intx_isr);
out:
  Ioapic::mask(g, true);
  set_irq_handler(kIntxVector, nullptr);
  g_intx_device = nullptr;
}

}  // namespace guest
