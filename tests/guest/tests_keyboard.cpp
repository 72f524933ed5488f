// i8042-ctrl-alt-del (explicit only): the guest drives the i8042 as Linux's i8042 and atkbd
// drivers do (controller self test, the second port's loopback and interface test failing: no
// mouse, the keyboard port's test, interrupts on, GETID and ENABLE to the keyboard), prints
// `i8042: keyboard ready`, then waits up to kbd.wait.ms (default 20000) for keys on ISA IRQ 1
// (edge, active high). Once it has read Ctrl-Alt-Del in scan code set 2 (14 11 E0 71, then
// E0 F0 71 F0 11 F0 14) it prints `i8042: ctrl-alt-del` and resets the machine through the
// controller, as a guest's reboot would: ember exits 0.
#include "ioapic.h"
#include "tests.h"

namespace guest {

namespace {
constexpr uint16_t kData = 0x60, kStatus = 0x64;
constexpr uint8_t kOutputFull = 0x01, kInputFull = 0x02;
constexpr uint8_t kVector = 0x49;
constexpr uint32_t kGsi = 1;
constexpr uint8_t kExpected[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};

volatile uint8_t g_keys[64];
volatile uint32_t g_nkeys = 0, g_kbd_irqs = 0;

void on_keyboard(uint8_t) {
  g_kbd_irqs = g_kbd_irqs + 1;
  // One byte per interrupt, as Linux's handler reads it; the controller pulses again for the next.
  if (inb(kStatus) & kOutputFull) {
    uint8_t b = inb(kData);
    if (g_nkeys < sizeof g_keys) g_keys[g_nkeys] = b;
    g_nkeys = g_nkeys + 1;
  }
}

void wait_input_empty() {
  for (int i = 0; i < 100000 && (inb(kStatus) & kInputFull); ++i) pause();
}

// A controller command, and its answer when it has one (-1: none within 100 ms).
int kbc(uint8_t cmd, bool answer, int data = -1) {
  wait_input_empty();
  outb(kStatus, cmd);
  if (data >= 0) {
    wait_input_empty();
    outb(kData, static_cast<uint8_t>(data));
  }
  if (!answer) return 0;
  uint64_t end = rdtsc() + 100 * tsc_khz();
  while (rdtsc() < end) {
    if (inb(kStatus) & kOutputFull) return inb(kData);
  }
  return -1;
}

// A byte to the keyboard, and the bytes it answers on IRQ 1 (up to `n`, within 100 ms).
uint32_t keyboard(uint8_t byte, uint32_t n) {
  uint32_t before = g_nkeys;
  wait_input_empty();
  outb(kData, byte);
  uint64_t end = rdtsc() + 100 * tsc_khz();
  sti();  // spinning, not halting: nothing else would wake a halted CPU if no byte came
  while (g_nkeys - before < n && rdtsc() < end) pause();
  cli();
  return g_nkeys - before;
}

}  // namespace

void test_i8042_ctrl_alt_del(TestResult& r) {
  const uint64_t wait_ms = cmdline_number("kbd.wait.ms", 20000);
  while (inb(kStatus) & kOutputFull) (void)inb(kData);  // flush
  int v;
  if ((v = kbc(0xaa, true)) != 0x55) return void(fail(r, "self test answered %d, not 0x55", v));
  if ((v = kbc(0xd3, true, 0x5a)) == 0x5a) return void(fail(r, "the mouse port echoed"));
  if ((v = kbc(0xa9, true)) == 0x00) return void(fail(r, "the mouse port's test passed"));
  if ((v = kbc(0xab, true)) != 0x00) return void(fail(r, "keyboard port test answered %d", v));
  set_irq_handler(kVector, on_keyboard);
  Ioapic::route_edge(kGsi, kVector, apic_id(), false);
  kbc(0x60, false, 0x01);  // keyboard interrupts on, its port enabled, no translation
  cli();
  uint32_t got = keyboard(0xf2, 3);
  if (got != 3 || g_keys[0] != 0xfa || g_keys[1] != 0xab || g_keys[2] != 0x83) {
    return void(
        fail(r, "GETID: %u bytes on IRQ 1 (%x %x %x)", got, g_keys[0], g_keys[1], g_keys[2]));
  }
  if (keyboard(0xf4, 1) != 1 || g_keys[3] != 0xfa) return void(fail(r, "ENABLE not acknowledged"));
  g_nkeys = 0;
  printf("i8042: keyboard ready (%u interrupts so far)\n", g_kbd_irqs);
  uint64_t end = rdtsc() + wait_ms * tsc_khz();
  sti();
  while (g_nkeys < sizeof kExpected && rdtsc() < end) pause();
  cli();
  Ioapic::mask(kGsi, true);
  set_irq_handler(kVector, nullptr);
  if (g_nkeys < sizeof kExpected) {
    return void(fail(r, "%u of the %zu Ctrl-Alt-Del bytes within %lu ms", g_nkeys, sizeof kExpected,
                     wait_ms));
  }
  for (uint32_t i = 0; i < sizeof kExpected; ++i) {
    if (g_keys[i] != kExpected[i]) {
      return void(fail(r, "byte %u of Ctrl-Alt-Del is %x, not %x", i, g_keys[i], kExpected[i]));
    }
  }
  printf("i8042: ctrl-alt-del\n");
  kbc(0xfe, false);  // reset
  delay_us(100000);
  fail(r, "still running 100 ms after the i8042 reset command");
}

}  // namespace guest
