// The test guest's runtime: C library basics, serial console, formatting, command line, IDT,
// x2APIC, timing and page mapping.
#include <stdarg.h>

#include "guest.h"

extern "C" {

static bool memcmp_bytes_differ(const uint8_t* x, const uint8_t* y) {
  uint64_t u, v;
  __builtin_memcpy(&u, x, 8);
  __builtin_memcpy(&v, y, 8);
  return u != v;
}

// The bulk of each copy, fill and compare is one string instruction over 8-byte words: where guest
// kernel code is instruction-emulated (PVM) a `rep movsq` costs about a sixth of a loop per word.
void* memcpy(void* dst, const void* src, size_t n) {
  void* d = dst;
  const void* s = src;
  size_t words = n / 8, bytes = n % 8;
  asm volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(words)::"memory");
  asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(bytes)::"memory");
  return dst;
}
void* memset(void* dst, int c, size_t n) {
  void* d = dst;
  uint64_t v = 0x0101010101010101ULL * static_cast<uint8_t>(c);
  size_t words = n / 8, bytes = n % 8;
  asm volatile("rep stosq" : "+D"(d), "+c"(words) : "a"(v) : "memory");
  asm volatile("rep stosb" : "+D"(d), "+c"(bytes) : "a"(v) : "memory");
  return dst;
}
int memcmp(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const uint8_t*>(a);
  const auto* y = static_cast<const uint8_t*>(b);
  size_t words = n / 8;
  if (words != 0) {
    const uint8_t* xs = x;
    const uint8_t* ys = y;
    asm volatile("repe cmpsq" : "+S"(xs), "+D"(ys), "+c"(words)::"memory", "cc");
    // xs/ys stop just past the first differing word, or at the end of the words.
    size_t done = static_cast<size_t>(xs - x);
    if (memcmp_bytes_differ(xs - 8, ys - 8)) {
      x = xs - 8;
      y = ys - 8;
      n = 8;
    } else {
      x = xs;
      y = ys;
      n -= done;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
size_t strlen(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}
void __cxa_pure_virtual() {
  guest::exit(99);
}

}  // extern "C"

namespace guest {

// ---- Serial ----
namespace {
constexpr uint16_t kCom1 = 0x3f8;
}

void serial_init() {
  outb(kCom1 + 1, 0x00);  // no interrupts
  outb(kCom1 + 3, 0x80);  // DLAB
  outb(kCom1 + 0, 0x01);  // 115200 baud
  outb(kCom1 + 1, 0x00);
  outb(kCom1 + 3, 0x03);  // 8N1
  outb(kCom1 + 2, 0x07);  // FIFO on, cleared
  outb(kCom1 + 4, 0x03);  // DTR, RTS
}

void putc(char c) {
  for (int i = 0; i < 100000 && !(inb(kCom1 + 5) & 0x20); ++i) pause();
  outb(kCom1, static_cast<uint8_t>(c));
}

void puts(const char* s) {
  while (*s) putc(*s++);
}

namespace {

struct Out {
  char* buf;
  size_t size;
  size_t len;
  bool to_serial;
  void put(char c) {
    if (to_serial) {
      putc(c);
    } else if (len + 1 < size) {
      buf[len] = c;
    }
    ++len;
  }
};

void put_num(Out& o, uint64_t v, unsigned base, int width, bool zero, bool neg) {
  char tmp[24];
  int n = 0;
  do {
    unsigned d = static_cast<unsigned>(v % base);
    tmp[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v != 0);
  if (neg) tmp[n++] = '-';
  for (int i = n; i < width; ++i) o.put(zero ? '0' : ' ');
  while (n > 0) o.put(tmp[--n]);
}

void vformat(Out& o, const char* fmt, va_list ap) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      o.put(*fmt);
      continue;
    }
    ++fmt;
    bool zero = false;
    int width = 0;
    if (*fmt == '0') {
      zero = true;
      ++fmt;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l') {
      ++longs;
      ++fmt;
    }
    if (*fmt == 'z') {
      longs = 1;
      ++fmt;
    }
    switch (*fmt) {
      case 's': {
        const char* s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        while (*s) o.put(*s++);
        break;
      }
      case 'c':
        o.put(static_cast<char>(va_arg(ap, int)));
        break;
      case 'd': {
        int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
        put_num(o, v < 0 ? -static_cast<uint64_t>(v) : v, 10, width, zero, v < 0);
        break;
      }
      case 'u':
      case 'x': {
        uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
        put_num(o, v, *fmt == 'x' ? 16 : 10, width, zero, false);
        break;
      }
      case 'p':
        o.put('0');
        o.put('x');
        put_num(o, reinterpret_cast<uint64_t>(va_arg(ap, void*)), 16, 0, false, false);
        break;
      case '%':
        o.put('%');
        break;
      default:
        o.put('?');
        break;
    }
  }
}

}  // namespace

void printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Out o{nullptr, 0, 0, true};
  vformat(o, fmt, ap);
  va_end(ap);
}

int snprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Out o{buf, size, 0, false};
  vformat(o, fmt, ap);
  va_end(ap);
  if (size > 0) buf[o.len < size ? o.len : size - 1] = 0;
  return static_cast<int>(o.len);
}

static void vfail(TestResult& r, const char* fmt, va_list ap) {
  if (!r.ok) return;
  r.ok = false;
  Out o{r.reason, sizeof r.reason, 0, false};
  vformat(o, fmt, ap);
  r.reason[o.len < sizeof r.reason ? o.len : sizeof r.reason - 1] = 0;
}

bool fail(TestResult& r, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(r, fmt, ap);
  va_end(ap);
  return false;
}

[[noreturn]] void exit(uint32_t status) {
  outl(0xf4, status);
  for (;;) asm volatile("cli; hlt");
}

// ---- Command line ----
bool cmdline_get(const char* key, char* out, size_t out_size) {
  const char* s = boot_info.cmdline;
  if (!s) return false;
  size_t klen = strlen(key);
  while (*s) {
    while (*s == ' ') ++s;
    const char* tok = s;
    while (*s && *s != ' ') ++s;
    size_t tlen = static_cast<size_t>(s - tok);
    if (tlen > klen && tok[klen] == '=' && memcmp(tok, key, klen) == 0) {
      size_t vlen = tlen - klen - 1;
      if (vlen + 1 > out_size) vlen = out_size - 1;
      memcpy(out, tok + klen + 1, vlen);
      out[vlen] = 0;
      return true;
    }
  }
  return false;
}

bool parse_u64(const char* s, uint64_t* out) {
  uint64_t v = 0;
  unsigned base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  if (!*s) return false;
  for (; *s; ++s) {
    unsigned d;
    if (*s >= '0' && *s <= '9')
      d = *s - '0';
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = *s - 'a' + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      d = *s - 'A' + 10;
    else
      return false;
    v = v * base + d;
  }
  *out = v;
  return true;
}

bool parse_size(const char* s, uint64_t* out) {
  char num[32];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof num) return false;
  memcpy(num, s, n + 1);
  unsigned shift = 0;
  char last = num[n - 1];
  if (last == 'K' || last == 'k') shift = 10;
  if (last == 'M' || last == 'm') shift = 20;
  if (last == 'G' || last == 'g') shift = 30;
  if (shift) num[n - 1] = 0;
  uint64_t v;
  if (!parse_u64(num, &v)) return false;
  *out = v << shift;
  return true;
}

uint64_t cmdline_number(const char* key, uint64_t def) {
  char v[32];
  uint64_t n;
  if (cmdline_get(key, v, sizeof v) && parse_size(v, &n)) return n;
  return def;
}

// ---- IDT and interrupts ----
namespace {
struct IdtEntry {
  uint16_t offset_lo, selector;
  uint8_t ist, type;
  uint16_t offset_mid;
  uint32_t offset_hi, zero;
} __attribute__((packed));
IdtEntry idt[256] __attribute__((aligned(16)));
IrqHandler handlers[256];
struct {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed)) idtr;
}  // namespace

extern "C" char interrupt_stubs[];

void idt_init() {
  for (int v = 0; v < 256; ++v) {
    uint64_t addr = reinterpret_cast<uint64_t>(interrupt_stubs) + v * 16;
    idt[v] = IdtEntry{
        static_cast<uint16_t>(addr),       0x08, 0, 0x8e, static_cast<uint16_t>(addr >> 16),
        static_cast<uint32_t>(addr >> 32), 0};
  }
  idtr.limit = sizeof idt - 1;
  idtr.base = reinterpret_cast<uint64_t>(idt);
  idt_load();
}

void idt_load() {
  asm volatile("lidt %0" ::"m"(idtr));
}

void set_irq_handler(uint8_t vector, IrqHandler handler) {
  handlers[vector] = handler;
}

volatile uint32_t irq_counts[256];

void pic_mask_all() {
  // The 8259s' interrupt mask registers (OCW1): firmware may leave them programmed with the PIT
  // unmasked at vectors 8-15, which would alias CPU exceptions once interrupts are enabled.
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
}

extern "C" void interrupt_dispatch(InterruptFrame* f) {
  if (f->vector < 32) {
    uint64_t cr2;
    asm volatile("mov %%cr2, %0" : "=r"(cr2));
    printf("\nFAIL exception: vector %lu error %lx at rip %lx (cr2 %lx) on cpu %u\n", f->vector,
           f->error_code, f->rip, cr2, apic_id());
    printf("0 passed, 1 failed\n");
    exit(2);
  }
  if (f->vector == 0xff) return;  // spurious: no EOI
  __atomic_fetch_add(&irq_counts[f->vector], 1, __ATOMIC_RELAXED);
  IrqHandler h = handlers[f->vector];
  if (h) h(static_cast<uint8_t>(f->vector));
  apic_eoi();
}

// ---- x2APIC (Intel SDM vol. 3 ch. 10.12) ----
namespace {
constexpr uint32_t kMsrApicBase = 0x1b;
constexpr uint32_t kMsrX2apicId = 0x802, kMsrTpr = 0x808, kMsrEoi = 0x80b, kMsrSvr = 0x80f,
                   kMsrIcr = 0x830;
}  // namespace

void apic_init() {
  wrmsr(kMsrApicBase, rdmsr(kMsrApicBase) | (1u << 11) | (1u << 10));
  wrmsr(kMsrSvr, 0x1ff);  // software enable, spurious vector 0xff
  wrmsr(kMsrTpr, 0);
}
uint32_t apic_id() {
  return static_cast<uint32_t>(rdmsr(kMsrX2apicId));
}
void apic_eoi() {
  wrmsr(kMsrEoi, 0);
}
void apic_send_ipi(uint32_t dest, uint32_t icr_low) {
  wrmsr(kMsrIcr, (static_cast<uint64_t>(dest) << 32) | icr_low);
}

// ---- Time ----
namespace {
uint64_t g_tsc_khz = 0;
const char* g_tsc_source = "none";

// pvclock_vcpu_time_info (Linux arch/x86/include/asm/pvclock-abi.h), written by KVM once the
// kvmclock MSR points at it.
struct PvClock {
  uint32_t version, pad0;
  uint64_t tsc_timestamp, system_time;
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags, pad[2];
};
PvClock g_pvclock __attribute__((aligned(64)));

// The TSC frequency as the hypervisor states it, or 0: CPUID leaf 0x15 (TSC/crystal ratio),
// 0x16 (base frequency), the hypervisor timing leaf 0x40000010 (kHz), or KVM's kvmclock
// (tsc_to_system_mul/tsc_shift, as Linux's pvclock_tsc_khz reads them).
uint64_t tsc_khz_stated() {
  uint32_t a, b, c, d;
  cpuid(0, 0, &a, &b, &c, &d);
  uint32_t max = a;
  if (max >= 0x15) {
    cpuid(0x15, 0, &a, &b, &c, &d);
    if (a != 0 && b != 0 && c != 0) {
      g_tsc_source = "cpuid15";
      return static_cast<uint64_t>(c) * b / a / 1000;
    }
  }
  if (max >= 0x16) {
    cpuid(0x16, 0, &a, &b, &c, &d);
    if ((a & 0xffff) != 0) {
      g_tsc_source = "cpuid16";
      return static_cast<uint64_t>(a & 0xffff) * 1000;
    }
  }
  cpuid(1, 0, &a, &b, &c, &d);
  if (!(c & (1u << 31))) return 0;  // no hypervisor
  cpuid(0x40000000, 0, &a, &b, &c, &d);
  uint32_t hv_max = a;
  bool kvm = b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d;  // "KVMKVMKVM\0\0\0"
  if (hv_max >= 0x40000010 && hv_max < 0x40000100) {
    cpuid(0x40000010, 0, &a, &b, &c, &d);
    if (a != 0) {
      g_tsc_source = "cpuid40000010";
      return a;
    }
  }
  if (!kvm || hv_max < 0x40000001) return 0;
  cpuid(0x40000001, 0, &a, &b, &c, &d);
  uint32_t msr = (a & (1u << 3)) ? 0x4b564d01 : (a & 1u) ? 0x12 : 0;  // CLOCKSOURCE2 / CLOCKSOURCE
  if (msr == 0) return 0;
  memset(&g_pvclock, 0, sizeof g_pvclock);
  wrmsr(msr, reinterpret_cast<uint64_t>(&g_pvclock) | 1);
  volatile PvClock* pv = &g_pvclock;
  uint32_t mul = 0;
  int8_t shift = 0;
  for (int tries = 0; tries < 1000; ++tries) {
    uint32_t v = pv->version;
    barrier();
    mul = pv->tsc_to_system_mul;
    shift = pv->tsc_shift;
    barrier();
    if (v != 0 && (v & 1) == 0 && v == pv->version && mul != 0) break;
    mul = 0;
    pause();
  }
  wrmsr(msr, 0);  // KVM stops writing guest memory
  if (mul == 0) return 0;
  uint64_t khz = (1000000ULL << 32) / mul;
  khz = shift < 0 ? khz << -shift : khz >> shift;
  g_tsc_source = "kvmclock";
  return khz;
}

// Calibration against PIT channel 2 (1.193182 MHz) over 10 ms, gated through port 0x61.
uint64_t tsc_khz_pit() {
  outb(0x61, static_cast<uint8_t>((inb(0x61) & ~0x02) | 0x01));
  outb(0x43, 0xb0);  // channel 2, lobyte/hibyte, mode 0
  const uint16_t count = 11932;
  outb(0x42, count & 0xff);
  outb(0x42, count >> 8);
  uint64_t t0 = rdtsc();
  uint32_t spins = 0;
  while (!(inb(0x61) & 0x20) && ++spins < 10000000) {
  }
  g_tsc_source = "pit";
  return (rdtsc() - t0) / 10;
}
}  // namespace

uint64_t tsc_khz() {
  if (g_tsc_khz) return g_tsc_khz;
  // What the hypervisor states is exact; the PIT (absent on some machines, e.g. QEMU microvm
  // without port 0x61) is the fallback.
  uint64_t khz = tsc_khz_stated();
  if (khz < 100000 || khz > 10000000) khz = tsc_khz_pit();
  if (khz < 100000 || khz > 10000000) {
    khz = 2000000;  // implausible: assume 2 GHz
    g_tsc_source = "assumed";
  }
  g_tsc_khz = khz;
  return khz;
}

const char* tsc_source() {
  (void)tsc_khz();
  return g_tsc_source;
}

void delay_us(uint64_t us) {
  uint64_t end = rdtsc() + us * tsc_khz() / 1000;
  while (rdtsc() < end) pause();
}

namespace {
constexpr uint32_t kLvtTimer = 0x832, kInitialCount = 0x838, kCurrentCount = 0x839, kDivide = 0x83e;
}  // namespace

void lapic_timer_periodic(uint8_t vector, uint32_t count) {
  wrmsr(kDivide, 0x3);                    // divide by 16
  wrmsr(kLvtTimer, (1u << 17) | vector);  // periodic
  wrmsr(kInitialCount, count);
}

void lapic_timer_stop(uint8_t vector) {
  wrmsr(kLvtTimer, (1u << 16) | vector);  // masked
  wrmsr(kInitialCount, 0);
}

uint32_t lapic_timer_current() {
  return static_cast<uint32_t>(rdmsr(kCurrentCount));
}

bool wait_until(volatile uint32_t* counter, uint32_t target, uint32_t timeout_ms) {
  uint64_t end = rdtsc() + static_cast<uint64_t>(timeout_ms) * tsc_khz();
  while (*counter < target) {
    if (rdtsc() > end) return false;
    pause();
  }
  return true;
}

// ---- Memory ----
extern "C" uint64_t boot_pml4[512];

namespace {
constexpr size_t kPoolPages = 2048;  // 8 MiB for page tables, stacks, virtqueues and buffers
uint8_t page_pool[kPoolPages * 4096] __attribute__((aligned(4096)));
size_t pool_used = 0;
}  // namespace

void* alloc_pages_uninit(size_t pages) {
  if (pool_used + pages > kPoolPages) return nullptr;
  void* p = page_pool + pool_used * 4096;
  pool_used += pages;
  return p;
}

void* alloc_pages(size_t pages) {
  void* p = alloc_pages_uninit(pages);
  if (p != nullptr) memset(p, 0, pages * 4096);
  return p;
}

bool map_identity(uint64_t addr, uint64_t size, bool mmio) {
  uint64_t start = addr & ~((1ULL << 21) - 1);
  uint64_t end = addr + size;
  for (uint64_t a = start; a < end; a += 1ULL << 21) {
    uint64_t* pml4e = &boot_pml4[(a >> 39) & 511];
    if (!(*pml4e & 1)) {
      void* t = alloc_pages(1);
      if (!t) return false;
      *pml4e = reinterpret_cast<uint64_t>(t) | 3;
    }
    auto* pdpt = reinterpret_cast<uint64_t*>(*pml4e & ~0xfffULL);
    uint64_t* pdpte = &pdpt[(a >> 30) & 511];
    if (!(*pdpte & 1)) {
      void* t = alloc_pages(1);
      if (!t) return false;
      *pdpte = reinterpret_cast<uint64_t>(t) | 3;
    }
    auto* pd = reinterpret_cast<uint64_t*>(*pdpte & ~0xfffULL);
    pd[(a >> 21) & 511] = a | (mmio ? 0x9b : 0x83);
  }
  uint64_t cr3;
  asm volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3)::"memory");
  return true;
}

}  // namespace guest
