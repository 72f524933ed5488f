// Tests that exercise the VMM's handling of the guest as a whole, run only when named:
//   crash  - triple-faults on purpose (ember must report the exit reason, RIP and registers and
//            exit with status 3 instead of hanging);
//   reboot - pulses the reset line through the i8042 controller (command 0xfe); ember must end
//            with status 0, as a machine reset ends the VM;
//   sleep  - idles with interrupts on for sleep.ms=N milliseconds (default 10000) and passes, so
//            the host can stop ember with a signal in the middle.
#include "tests.h"

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

}  // namespace guest
