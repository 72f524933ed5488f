// rtc: the CMOS real-time clock (MC146818A) at ports 0x70 (index) and 0x71 (data), read as
// Linux's mc146818 code and rtc_cmos driver read it: status D says the time is valid, status A
// never shows an update in progress, the date and time are BCD in 24-hour mode and within a few
// seconds of expect.rtc= (the host's UTC seconds when the test started ember), the century is in
// register 0x32, the update-ended interrupt arrives on ISA IRQ 8 within a second and a half, and
// an index with bit 7 set (the NMI mask) or beyond the clock registers names battery-backed RAM.
#include "ioapic.h"
#include "tests.h"

namespace guest {

namespace {
constexpr uint16_t kIndex = 0x70, kData = 0x71;
constexpr uint8_t kSec = 0x00, kMin = 0x02, kHour = 0x04, kMday = 0x07, kMonth = 0x08, kYear = 0x09,
                  kA = 0x0a, kB = 0x0b, kC = 0x0c, kD = 0x0d, kCentury = 0x32;
constexpr uint8_t kVector = 0x48;
constexpr uint32_t kGsi = 8;

uint8_t cmos_read(uint8_t index) {
  outb(kIndex, index);
  return inb(kData);
}
void cmos_write(uint8_t index, uint8_t v) {
  outb(kIndex, index);
  outb(kData, v);
}
bool bcd_ok(uint8_t v) {
  return (v & 0x0f) <= 9 && (v >> 4) <= 9;
}
int bcd(uint8_t v) {
  return (v >> 4) * 10 + (v & 0x0f);
}

// Seconds since 1970-01-01 of a UTC civil date (H. Hinnant's days_from_civil).
int64_t unix_seconds(int y, int m, int d, int hh, int mm, int ss) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + hh * 3600 + mm * 60 + ss;
}

volatile uint32_t rtc_irqs = 0;
volatile uint8_t rtc_status_c = 0;
void on_rtc(uint8_t) {
  rtc_status_c = cmos_read(kC);  // reading status C acknowledges the interrupt
  rtc_irqs = rtc_irqs + 1;
}
}  // namespace

void test_rtc(TestResult& r) {
  uint8_t d = cmos_read(kD);
  if (d != 0x80) return void(fail(r, "status D %x, expected 0x80 (valid RAM and time)", d));
  for (int i = 0; i < 200; ++i) {
    uint8_t a = cmos_read(kA);
    if (a & 0x80) return void(fail(r, "status A %x: update in progress", a));
  }
  uint8_t b = cmos_read(kB);
  if ((b & 0x06) != 0x02) return void(fail(r, "status B %x: not BCD and 24-hour", b));

  // Read the time twice until both readings agree (a second may pass between the registers).
  uint8_t t[7] = {}, again[7] = {};
  const uint8_t regs[7] = {kSec, kMin, kHour, kMday, kMonth, kYear, kCentury};
  for (int attempt = 0;; ++attempt) {
    for (int i = 0; i < 7; ++i) t[i] = cmos_read(regs[i]);
    for (int i = 0; i < 7; ++i) again[i] = cmos_read(regs[i]);
    if (memcmp(t, again, sizeof t) == 0) break;
    if (attempt == 3) return void(fail(r, "the time never read the same twice"));
  }
  for (int i = 0; i < 7; ++i) {
    if (!bcd_ok(t[i])) return void(fail(r, "register %x reads %x, not BCD", regs[i], t[i]));
  }
  int64_t now = unix_seconds(bcd(t[6]) * 100 + bcd(t[5]), bcd(t[4]), bcd(t[3]), bcd(t[2]),
                             bcd(t[1]), bcd(t[0]));
  printf("rtc: %02x%02x-%02x-%02x %02x:%02x:%02x UTC\n", t[6], t[5], t[4], t[3], t[2], t[1], t[0]);
  uint64_t expected = cmdline_number("expect.rtc", 0);
  if (expected != 0) {
    int64_t delta = now - static_cast<int64_t>(expected);
    if (delta < -2 || delta > 30) {
      return void(
          fail(r, "the RTC is %ld s off the host's clock (expect.rtc=%lu)", delta, expected));
    }
  }

  // The update-ended interrupt: UIE in status B, ISA IRQ 8 (edge, active high) to this CPU.
  (void)cmos_read(kC);
  rtc_irqs = 0;
  set_irq_handler(kVector, on_rtc);
  Ioapic::route_edge(kGsi, kVector, apic_id(), false);
  cmos_write(kB, b | 0x10);
  sti();
  bool ok = wait_until(&rtc_irqs, 1, 1500);
  cli();
  cmos_write(kB, b);
  Ioapic::mask(kGsi, true);
  if (!ok) return void(fail(r, "no update interrupt on IRQ 8 within 1.5 s"));
  if ((rtc_status_c & 0x90) != 0x90) {
    return void(fail(r, "status C %x in the interrupt, expected IRQF and UF", rtc_status_c));
  }

  // The index is 7 bits: 0x80 | 0x7f and 0x7f name the same byte of battery-backed RAM.
  cmos_write(0xff, 0x5a);
  if (cmos_read(0x7f) != 0x5a) return void(fail(r, "index 0xff did not reach RAM byte 0x7f"));
  if (cmos_read(0x80 | kD) != 0x80) return void(fail(r, "the NMI mask bit changed the index"));
}

}  // namespace guest
