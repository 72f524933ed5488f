// pci-enum: the host bridge at 00:00.0, every function on bus 0, BAR sizes sane, capability lists
// well-formed and terminated, and every BAR moved by this driver (pci.cpp) with the device
// answering at its new address — and no longer at the old one, where nothing else took its place.
// Optional: `expect.pci=N`, the number of functions on bus 0; `pci.io=off` when the platform
// does not forward port I/O to PCI (QEMU's microvm), so I/O BARs are sized and moved but not
// probed.
#include "pci.h"
#include "tests.h"
#include "virtio_pci.h"

namespace guest {

namespace {

// The modern common configuration of a virtio function (its first usable capability), as an
// offset into a BAR; false when there is none.
bool common_cfg_location(const PciBus& bus, const PciFunction& f, uint8_t* bar, uint32_t* off) {
  for (uint8_t cap = bus.find_capability(f, pcicfg::kCapVendor); cap != 0;
       cap = bus.find_capability(f, pcicfg::kCapVendor, cap)) {
    uint8_t b = bus.read8(f, cap + 4);
    if (bus.read8(f, cap + 3) == 1 && b <= 5 && f.bar[b].size != 0 && !f.bar[b].io) {
      *bar = b;
      *off = bus.read32(f, cap + 8);
      return true;
    }
  }
  return false;
}

bool check_virtio_registers(const PciBus& bus, PciFunction& f, TestResult& r) {
  // Legacy face: the queue-0 size through I/O BAR0 (every virtio device has a queue 0).
  char io[8];
  bool io_routed = !(cmdline_get("pci.io", io, sizeof io) && memcmp(io, "off", 4) == 0);
  if (io_routed && f.device < 0x1040 && f.bar[0].io && f.bar[0].addr != 0) {
    VirtioPci probe;
    uint16_t size = probe.legacy_queue0_size(static_cast<uint16_t>(f.bar[0].addr));
    if (size == 0 || size == 0xffff) {
      return fail(r, "%02x.%x: legacy queue 0 size reads %x at new port %lx", f.dev, f.fn, size,
                  f.bar[0].addr);
    }
    if (f.bar[0].found != 0 && !bus.address_assigned(f.bar[0].found, true)) {
      uint16_t old = probe.legacy_queue0_size(static_cast<uint16_t>(f.bar[0].found));
      if (old == size) {
        return fail(r, "%02x.%x: still answers at old port %lx", f.dev, f.fn, f.bar[0].found);
      }
    }
  }
  // Modern face: num_queues in the common configuration.
  uint8_t bar;
  uint32_t off;
  if (common_cfg_location(bus, f, &bar, &off)) {
    uint16_t nq = mmio_read<uint16_t>(f.bar[bar].addr + off + 0x12);
    if (nq == 0 || nq == 0xffff) {
      return fail(r, "%02x.%x: num_queues reads %x at new address %lx", f.dev, f.fn, nq,
                  f.bar[bar].addr + off);
    }
    uint64_t old = f.bar[bar].found + off;
    if (f.bar[bar].found != 0 && old >= 0xc0000000 && old < 0xfec00000 &&
        !bus.address_assigned(old, false) && mmio_read<uint16_t>(old + 0x12) == nq) {
      return fail(r, "%02x.%x: still answers at old address %lx", f.dev, f.fn, old);
    }
  }
  // MSI-X: vector control of entry 0 in the table's new place; masked after reset (PCI 3.0
  // 6.8.2, Vector Control: the Mask bit's default is 1).
  uint8_t cap = bus.find_capability(f, pcicfg::kCapMsix);
  if (cap != 0) {
    uint32_t tbl = bus.read32(f, cap + 4);
    uint64_t entry0 = f.bar[tbl & 7].addr + (tbl & ~7u);
    uint32_t ctrl = mmio_read<uint32_t>(entry0 + 12);
    if (ctrl == 0xffffffff || !(ctrl & 1)) {
      return fail(r, "%02x.%x: MSI-X entry 0 vector control reads %x at %lx", f.dev, f.fn, ctrl,
                  entry0 + 12);
    }
  }
  return true;
}

}  // namespace

// In `tests=all` when there is something to enumerate and move: a host bridge and at least one
// other function (a bare host bridge leaves the basic runs' test count unchanged).
bool pci_present() {
  return PciBus::get().find(0, 0) != nullptr && PciBus::get().count() > 1;
}

void test_pci_enum(TestResult& r) {
  PciBus& bus = PciBus::get();
  printf("pci: configuration mechanism %s", bus.mechanism_name());
  if (bus.mechanism() == PciBus::Mechanism::Ecam) {
    printf(" at %lx (%s)", bus.ecam_base(), bus.ecam_source());
  }
  printf(", %zu function(s) on bus 0\n", bus.count());
  PciFunction* hb = bus.find(0, 0);
  if (hb == nullptr) return void(fail(r, "no function at 00:00.0"));
  if (hb->class_code != 0x06 || hb->subclass != 0x00) {
    return void(
        fail(r, "00:00.0 is class %02x:%02x, not a host bridge", hb->class_code, hb->subclass));
  }
  if (bus.error()[0]) return void(fail(r, "%s", bus.error()));
  uint64_t want;
  char v[16];
  if (cmdline_get("expect.pci", v, sizeof v) && parse_u64(v, &want) && want != bus.count()) {
    return void(fail(r, "%zu functions on bus 0, expected %lu", bus.count(), want));
  }
  for (size_t i = 0; i < bus.count(); ++i) {
    PciFunction& f = bus.at(i);
    printf("pci: %02x:%02x.%x %04x:%04x class %02x:%02x:%02x hdr %02x pin %u line %u\n", f.bus,
           f.dev, f.fn, f.vendor, f.device, f.class_code, f.subclass, f.prog_if, f.header_type,
           f.int_pin, f.int_line);
    for (int b = 0; b < 6; ++b) {
      const PciBar& bar = f.bar[b];
      if (bar.size == 0) continue;
      printf("pci:   BAR%d %s%s %lx bytes: %lx -> %lx\n", b, bar.io ? "io" : "mem",
             bar.io ? "" : (bar.is64 ? "64" : "32"), bar.size, bar.found, bar.addr);
    }
    if (f.error[0]) return void(fail(r, "%02x.%x: %s", f.dev, f.fn, f.error));
    char why[96];
    if (!bus.check_capabilities(f, why, sizeof why)) {
      return void(fail(r, "%02x.%x capabilities: %s", f.dev, f.fn, why));
    }
    if (!f.relocated) continue;
    // Config space holds the new addresses and decoding is on for every kind of BAR used.
    uint16_t cmd = bus.read16(f, pcicfg::kCommand);
    for (int b = 0; b < 6; ++b) {
      const PciBar& bar = f.bar[b];
      if (bar.size == 0) continue;
      if (bar.addr == 0 || bar.addr == bar.found) {
        return void(fail(r, "%02x.%x BAR%d was not moved", f.dev, f.fn, b));
      }
      uint64_t now =
          bus.read32(f, static_cast<uint16_t>(pcicfg::kBar0 + 4 * b)) & (bar.io ? ~3u : ~0xfu);
      if (bar.is64)
        now |=
            static_cast<uint64_t>(bus.read32(f, static_cast<uint16_t>(pcicfg::kBar0 + 4 * b + 4)))
            << 32;
      if (now != bar.addr) {
        return void(
            fail(r, "%02x.%x BAR%d reads %lx, assigned %lx", f.dev, f.fn, b, now, bar.addr));
      }
      if (!(cmd & (bar.io ? pcicfg::kCmdIo : pcicfg::kCmdMemory))) {
        return void(fail(r, "%02x.%x: command %x lacks %s decoding", f.dev, f.fn, cmd,
                         bar.io ? "I/O" : "memory"));
      }
    }
    if (virtio_type(f) != 0 && !check_virtio_registers(bus, f, r)) return;
  }
}

}  // namespace guest
