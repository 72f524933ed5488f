// Tests that exercise the VMM's handling of the guest as a whole, run only when named:
//   crash  - triple-faults on purpose (ember must report the exit reason, RIP and registers and
//            exit with status 3 instead of hanging);
//   reboot - pulses the reset line through the i8042 controller (command 0xfe); ember must end
//            with status 0, as a machine reset ends the VM;
//   sleep  - idles with interrupts on for sleep.ms=N milliseconds (default 10000) and passes, so
//            the host can stop ember with a signal in the middle;
//   serial-wait - prints `serial-wait: waiting` and polls COM1 for a byte of input (every
//            100 us), at most serialwait.ms=N milliseconds (default 30000), then prints it: a
//            guest stopped at a known point that a host byte moves on (tools/bench's snapshot
//            row restores it there);
//   idle   - does idle.reads=N (default 200) 4 KiB virtio-blk reads one at a time, so that a
//            polling event loop is awake, prints `idle: start`, halts for idle.ms=N (default
//            10000) woken only by a 10 Hz LAPIC timer, and prints `idle: end`: the host
//            measures ember's CPU time in between (an idle guest must cost about none);
//   pvpanic - finds the pvpanic-pci device (1b36:0011), checks the events it recognises,
//            reports a handled panic (CRASH_LOADED: the VM must go on), then a panic (PANICKED):
//            ember must end the VM with its panic status (4) at once.
#include "pci.h"
#include "tests.h"
#include "virtio_blk.h"

namespace guest {

bool explicit_only() {
  return false;
}

void test_crash(TestResult& r) {
  puts("crash: loading an empty IDT and raising #UD; expect a triple fault\n");
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) empty{0, 0};
  asm volatile("lidt %0; ud2" ::"m"(empty));
  fail(r, "the CPU survived an exception with no IDT");
}

void test_reboot(TestResult& r) {
  puts("reboot: pulsing the i8042 reset line\n");
  for (int i = 0; i < 100000 && (inb(0x64) & 0x02); ++i) pause();  // input buffer empty
  outb(0x64, 0xfe);
  delay_us(100000);
  fail(r, "still running 100 ms after the i8042 reset command");
}

void test_sleep(TestResult& r) {
  uint64_t ms = 10000;
  char v[24];
  if (cmdline_get("sleep.ms", v, sizeof v) && !parse_u64(v, &ms)) {
    fail(r, "bad sleep.ms=%s", v);
    return;
  }
  printf("sleep: idling for %lu ms\n", ms);
  // Polls the TSC rather than halting: nothing is set up to interrupt a halt.
  uint64_t end = rdtsc() + ms * tsc_khz();
  while (rdtsc() < end) pause();
}

namespace {
volatile uint32_t idle_ticks = 0;
void on_idle_tick(uint8_t) {
  idle_ticks = idle_ticks + 1;
}
}  // namespace

void test_serial_wait(TestResult& r) {
  constexpr uint16_t com1 = 0x3f8;
  uint64_t ms = cmdline_number("serialwait.ms", 30000);
  puts("serial-wait: waiting\n");
  uint64_t end = rdtsc() + ms * tsc_khz();
  while ((inb(com1 + 5) & 0x01) == 0) {  // LSR bit 0: data ready
    if (rdtsc() >= end) return void(fail(r, "no serial input within %lu ms", ms));
    uint64_t next = rdtsc() + tsc_khz() / 10;
    while (rdtsc() < next) pause();
  }
  printf("serial-wait: got 0x%x\n", inb(com1));
}

void test_idle(TestResult& r) {
  uint64_t reads = cmdline_number("idle.reads", 200), ms = cmdline_number("idle.ms", 10000);
  VirtioDevice* d = VirtioBlk::find(VirtioBlk::Pick::Any);
  if (d == nullptr) return void(fail(r, "no virtio-blk device"));
  VirtioBlk blk;
  if (!blk.init(d, 1, true, r)) return;
  DeviceSession session{d};
  for (uint64_t i = 0; i < reads; ++i) {
    uint8_t status = 0xff;
    uint64_t sector = (i * 8) % (blk.capacity() > 8 ? blk.capacity() - 8 : 1);
    if (!blk.request(VirtioBlk::kIn, sector, VirtioBlk::slot_buffer(0), 4096, &status, r)) return;
    if (status != VirtioBlk::kOk) return void(fail(r, "read %lu: status %u", i, status));
  }
  printf("idle: start, %lu reads done, halting for %lu ms\n", reads, ms);
  constexpr uint8_t kVector = 0x41;
  set_irq_handler(kVector, on_idle_tick);
  // KVM's APIC timer counts at 1 GHz: divided by 16, 6250000 ticks are 100 ms.
  lapic_timer_periodic(kVector, 6250000);
  uint64_t end = rdtsc() + ms * tsc_khz();
  while (rdtsc() < end) asm volatile("sti; hlt; cli" ::: "memory");
  lapic_timer_stop(kVector);
  set_irq_handler(kVector, nullptr);
  printf("idle: end, %u timer interrupts\n", idle_ticks);
  if (idle_ticks == 0) fail(r, "no timer interrupt woke the halted CPU");
}

void test_pvpanic(TestResult& r) {
  PciBus& bus = PciBus::get();
  const PciFunction* dev = nullptr;
  for (size_t i = 0; i < bus.count(); ++i) {
    const PciFunction& f = bus.at(i);
    if (f.vendor == 0x1b36 && f.device == 0x0011) dev = &f;
  }
  if (dev == nullptr) {
    fail(r, "no pvpanic-pci device (1b36:0011) on the bus");
    return;
  }
  const PciBar& bar = dev->bar[0];
  if (bar.io || bar.size == 0 || bar.addr == 0 || !dev->relocated) {
    fail(r, "pvpanic BAR0 is not a mapped memory BAR (size %llu)",
         static_cast<unsigned long long>(bar.size));
    return;
  }
  uint8_t events = mmio_read<uint8_t>(bar.addr);
  if (events != 0x3) {
    fail(r, "pvpanic recognises events 0x%x, expected PANICKED|CRASH_LOADED (0x3)", events);
    return;
  }
  mmio_write<uint8_t>(bar.addr, 0x2);  // CRASH_LOADED: the guest handles it, the VM goes on
  puts("pvpanic: reported a handled panic; now PANICKED, expect ember to end the VM\n");
  mmio_write<uint8_t>(bar.addr, 0x1);
  delay_us(100000);
  fail(r, "still running 100 ms after the PANICKED event");
}

}  // namespace guest
