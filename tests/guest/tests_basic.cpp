// Platform tests: serial port, memory map, LAPIC timer, SMP bring-up, command line.
#include "tests.h"

extern "C" char __image_end[];

namespace guest {

// ---- serial: the 16550 registers behave as Linux's 8250 driver expects ----
void test_serial(TestResult& r) {
  constexpr uint16_t com1 = 0x3f8;
  outb(com1 + 7, 0xa5);
  if (inb(com1 + 7) != 0xa5) return void(fail(r, "scratch register did not hold 0xa5"));
  outb(com1 + 7, 0x5a);
  if (inb(com1 + 7) != 0x5a) return void(fail(r, "scratch register did not hold 0x5a"));
  uint8_t lsr = inb(com1 + 5);
  if ((lsr & 0x60) != 0x60) return void(fail(r, "LSR %x: transmitter not empty", lsr));
  // Divisor latch round trip.
  outb(com1 + 3, 0x83);
  outb(com1 + 0, 0x03);
  outb(com1 + 1, 0x00);
  uint8_t dll = inb(com1 + 0);
  outb(com1 + 0, 0x01);  // back to 115200
  outb(com1 + 3, 0x03);
  if (dll != 0x03) return void(fail(r, "divisor latch read back %x", dll));
  // Loopback: MSR mirrors MCR (Linux's autoconfig test expects 0x90 for RTS|OUT2) and THR
  // bytes come back on RBR.
  uint8_t mcr = inb(com1 + 4);
  outb(com1 + 4, 0x10 | 0x0a);
  uint8_t msr = inb(com1 + 6) & 0xf0;
  outb(com1 + 0, 'Z');
  uint8_t lsr2 = inb(com1 + 5);
  uint8_t echoed = inb(com1 + 0);
  outb(com1 + 4, mcr);
  if (msr != 0x90) return void(fail(r, "loopback MSR %x, expected 0x90", msr));
  if (!(lsr2 & 0x01)) return void(fail(r, "loopback byte not received (LSR %x)", lsr2));
  if (echoed != 'Z') return void(fail(r, "loopback returned %x instead of 'Z'", echoed));
  puts("serial: output reaches the console\n");
}

// ---- memory: the PVH memory map describes exactly --memory of RAM, and it is usable ----
void test_memory(TestResult& r) {
  uint32_t n = boot_info.memmap_entries;
  if (n == 0) return void(fail(r, "empty memory map"));
  // The PVH ABI does not promise a sorted map: sort a copy by address.
  MemRange map[32];
  for (uint32_t i = 0; i < n; ++i) {
    map[i] = boot_info.memmap[i];
    for (uint32_t j = i; j > 0 && map[j].addr < map[j - 1].addr; --j) {
      MemRange t = map[j];
      map[j] = map[j - 1];
      map[j - 1] = t;
    }
  }
  uint64_t ram_above_1m = 0, prev_ram_end = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const MemRange& e = map[i];
    if (e.type != 1 || e.size == 0) continue;  // QEMU lists empty reserved entries
    if (e.addr < prev_ram_end) return void(fail(r, "RAM entries overlap at %lx", e.addr));
    prev_ram_end = e.addr + e.size;
    bool in_hole = e.addr < (4ULL << 30) && e.addr + e.size > (3ULL << 30);
    if (in_hole) return void(fail(r, "RAM at %lx overlaps the 3-4 GiB MMIO hole", e.addr));
    if (e.addr >= (1ULL << 20)) ram_above_1m += e.size;
  }
  // The first MiB counts towards --memory (the VMM reserves part of it for firmware areas).
  uint64_t total = ram_above_1m + (1ULL << 20);
  char expect[32];
  if (cmdline_get("expect.mem", expect, sizeof expect)) {
    uint64_t want;
    if (!parse_size(expect, &want)) return void(fail(r, "bad expect.mem=%s", expect));
    if (total != want)
      return void(fail(r, "memory map holds %lu bytes, expected %lu", total, want));
  }
  // Write and read back a pattern at the start and end of every RAM range above the image.
  uint64_t image_end = (reinterpret_cast<uint64_t>(__image_end) + 4095) & ~4095ULL;
  for (uint32_t i = 0; i < n; ++i) {
    const MemRange& e = map[i];
    if (e.type != 1 || e.addr + e.size <= image_end) continue;
    uint64_t lo = e.addr < image_end ? image_end : e.addr;
    uint64_t hi = e.addr + e.size - 8;
    if (!map_identity(lo, 8, false) || !map_identity(hi, 8, false)) {
      return void(fail(r, "cannot map %lx", hi));
    }
    auto* plo = reinterpret_cast<volatile uint64_t*>(lo);
    auto* phi = reinterpret_cast<volatile uint64_t*>(hi);
    *plo = 0x1122334455667788ULL ^ lo;
    *phi = 0x8877665544332211ULL ^ hi;
    if (*plo != (0x1122334455667788ULL ^ lo) || *phi != (0x8877665544332211ULL ^ hi)) {
      return void(fail(r, "RAM at %lx or %lx does not hold data", lo, hi));
    }
  }
  printf("memory: %lu MiB of RAM in %u map entries\n", total >> 20, n);
}

// ---- timer: the in-kernel LAPIC timer interrupts this CPU periodically ----
namespace {
volatile uint32_t timer_ticks = 0;
void on_timer(uint8_t) {
  timer_ticks = timer_ticks + 1;
}
}  // namespace

void test_timer(TestResult& r) {
  constexpr uint8_t kVector = 0x40;
  set_irq_handler(kVector, on_timer);
  timer_ticks = 0;
  lapic_timer_periodic(kVector, 200000);
  uint64_t current = lapic_timer_current();
  sti();
  bool ok = wait_until(&timer_ticks, 5, 5000);
  cli();
  lapic_timer_stop(kVector);
  if (current == 0 || current > 200000)
    return void(fail(r, "current count %lx not counting", current));
  if (!ok) return void(fail(r, "only %u timer interrupts in 5 s", timer_ticks));
}

// ---- smp: every vCPU starts through INIT/SIPI and checks in with its own APIC ID ----
volatile uint32_t ap_checked_in = 0;
volatile uint64_t ap_id_mask = 0;

extern "C" void ap_main() {
  idt_load();
  apic_init();
  uint32_t id = apic_id();
  if (id < 64) __atomic_fetch_or(&ap_id_mask, 1ULL << id, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&ap_checked_in, 1, __ATOMIC_SEQ_CST);
  for (;;) asm volatile("cli; hlt");
}

extern "C" char ap_trampoline[], ap_trampoline_end[];
extern "C" uint64_t ap_stack_top;

bool start_application_processors(uint32_t count, uint32_t* started) {
  memcpy(reinterpret_cast<void*>(0x8000), ap_trampoline,
         static_cast<size_t>(ap_trampoline_end - ap_trampoline));
  *started = 0;
  for (uint32_t id = 1; id < count; ++id) {
    auto* stack = static_cast<uint8_t*>(alloc_pages(2));
    if (!stack) return false;
    ap_stack_top = reinterpret_cast<uint64_t>(stack + 2 * 4096);
    uint32_t before = ap_checked_in;
    apic_send_ipi(id, 0x4500);  // INIT, level assert
    delay_us(1000);
    apic_send_ipi(id, 0x4608);  // STARTUP, vector 0x08 -> 0x8000
    if (!wait_until(&ap_checked_in, before + 1, 2000)) {
      apic_send_ipi(id, 0x4608);  // the second SIPI of the MP protocol
      if (!wait_until(&ap_checked_in, before + 1, 10000)) return false;
    }
    *started = *started + 1;
  }
  return true;
}

void test_smp(TestResult& r) {
  uint32_t a, b, c, d;
  cpuid(0xb, 1, &a, &b, &c, &d);
  uint32_t count = b & 0xffff;
  if (count == 0) count = 1;
  char expect[16];
  uint64_t want;
  if (cmdline_get("expect.cpus", expect, sizeof expect) && parse_u64(expect, &want) &&
      want != count) {
    return void(fail(r, "CPUID reports %u CPUs, expected %lu", count, want));
  }
  if (apic_id() != 0) return void(fail(r, "boot CPU has APIC ID %u", apic_id()));
  static bool started_once = false;
  static uint32_t started = 0;
  if (!started_once) {
    started_once = true;
    if (!start_application_processors(count, &started)) {
      return void(fail(r, "started %u of %u application processors", started, count - 1));
    }
  }
  uint64_t want_mask = 0;
  for (uint32_t id = 1; id < count && id < 64; ++id) want_mask |= 1ULL << id;
  if (ap_checked_in != count - 1 || ap_id_mask != want_mask) {
    return void(fail(r, "%u APs checked in (mask %lx), expected %u (mask %lx)", ap_checked_in,
                     ap_id_mask, count - 1, want_mask));
  }
  printf("smp: %u CPU(s) running\n", count);
}

// ---- cmdline: the command line arrived intact ----
void test_cmdline(TestResult& r) {
  if (boot_info.cmdline_paddr == 0) return void(fail(r, "no command line address"));
  const char* s = boot_info.cmdline;
  size_t n = strlen(s);
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < 0x20 || s[i] > 0x7e) return void(fail(r, "byte %lu is not printable (%x)", i, s[i]));
  }
  char expect[16];
  uint64_t want;
  if (cmdline_get("cmdline.len", expect, sizeof expect) && parse_u64(expect, &want) && want != n) {
    return void(fail(r, "command line is %lu bytes, expected %lu", n, want));
  }
  printf("cmdline: %s\n", s);
}

}  // namespace guest
