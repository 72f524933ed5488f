// The test guest's freestanding runtime: port and MSR access, serial output, formatting, the
// x2APIC, interrupts, page mapping, and the test registry.
//
// Rules for this code (it runs on PVM, where kernel-mode code is instruction-emulated): no SSE
// (-mgeneral-regs-only), no xAPIC MMIO (x2APIC MSRs only), no cmpxchg16b, xsave or int n.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
}

namespace guest {

// ---- CPU primitives ----
inline void outb(uint16_t port, uint8_t v) {
  asm volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
inline void outw(uint16_t port, uint16_t v) {
  asm volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
inline void outl(uint16_t port, uint32_t v) {
  asm volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
inline uint8_t inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline uint16_t inw(uint16_t port) {
  uint16_t v;
  asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline uint32_t inl(uint16_t port) {
  uint32_t v;
  asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
inline void wrmsr(uint32_t msr, uint64_t v) {
  asm volatile("wrmsr" ::"c"(msr), "a"(static_cast<uint32_t>(v)),
               "d"(static_cast<uint32_t>(v >> 32)));
}
inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t* a, uint32_t* b, uint32_t* c, uint32_t* d) {
  asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
inline void sti() {
  asm volatile("sti" ::: "memory");
}
inline void cli() {
  asm volatile("cli" ::: "memory");
}
inline void pause() {
  asm volatile("pause");
}
inline void barrier() {
  asm volatile("" ::: "memory");
}
inline void mb() {
  asm volatile("mfence" ::: "memory");
}

template <typename T>
inline T mmio_read(uint64_t addr) {
  return *reinterpret_cast<volatile T*>(addr);
}
template <typename T>
inline void mmio_write(uint64_t addr, T v) {
  *reinterpret_cast<volatile T*>(addr) = v;
}

// ---- Serial console (COM1, polled) and formatting ----
void serial_init();
void putc(char c);
void puts(const char* s);
// printf subset: %s %c %d %u %x %lu %ld %lx %llu %llx %p, with width/zero-pad for x/u/d.
void printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
int snprintf(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// ---- Exit ----
[[noreturn]] void exit(uint32_t status);  // debug-exit port 0xf4, then halt

// ---- Boot information (PVH start_info) ----
struct MemRange {
  uint64_t addr, size;
  uint32_t type;
};
struct BootInfo {
  const char* cmdline;
  uint64_t cmdline_paddr;
  MemRange memmap[32];
  uint32_t memmap_entries;
  uint64_t rsdp;
  uint32_t nr_modules;
};
extern BootInfo boot_info;

// Command-line lookup: value of `key=` (nullptr when absent), copied into `out`.
bool cmdline_get(const char* key, char* out, size_t out_size);
bool parse_size(const char* s, uint64_t* out);  // 64M, 3G, 4096, 0x1000
bool parse_u64(const char* s, uint64_t* out);
// The number (with an optional K/M/G suffix) given as `key=`, or `def` when absent or malformed.
uint64_t cmdline_number(const char* key, uint64_t def);

// ---- Interrupts and the x2APIC ----
struct InterruptFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code, rip, cs, rflags, rsp, ss;
};
using IrqHandler = void (*)(uint8_t vector);
void idt_init();
void idt_load();  // per CPU
void set_irq_handler(uint8_t vector, IrqHandler handler);
// Interrupts taken per vector (>= 32), counted before the handler runs.
extern volatile uint32_t irq_counts[256];
void pic_mask_all();  // masks both 8259s (called once at start)
void apic_init();     // per CPU: x2APIC mode, software enable
uint32_t apic_id();
void apic_eoi();
void apic_send_ipi(uint32_t dest, uint32_t icr_low);

// Waits (with interrupts enabled) until `*flag` reaches `target` or `timeout_ms` passes.
bool wait_until(volatile uint32_t* counter, uint32_t target, uint32_t timeout_ms);
uint64_t tsc_khz();        // found once (CPUID 0x15/0x16/0x40000010, kvmclock, else the PIT)
const char* tsc_source();  // where tsc_khz() came from: cpuid15, cpuid16, kvmclock, pit, ...
void delay_us(uint64_t us);
// The local APIC timer (x2APIC MSRs, divide by 16): periodic interrupts on `vector` every
// `count` timer ticks, and masked and stopped again.
void lapic_timer_periodic(uint8_t vector, uint32_t count);
void lapic_timer_stop(uint8_t vector);
uint32_t lapic_timer_current();

// ---- Memory ----
// Identity-maps [addr, addr+size) with 2 MiB pages (uncached when `mmio`). Returns false when the
// page-table pool is exhausted.
bool map_identity(uint64_t addr, uint64_t size, bool mmio);
void* alloc_pages(size_t pages);         // from a static pool, zeroed, never freed
void* alloc_pages_uninit(size_t pages);  // the same, not zeroed (for buffers overwritten anyway)

// ---- SMP ----
extern volatile uint32_t ap_checked_in;
extern volatile uint64_t ap_id_mask;
bool start_application_processors(uint32_t count, uint32_t* started);

// ---- Tests ----
struct TestResult {
  bool ok = true;
  char reason[160] = {};
};
// Marks the current test failed (first reason wins) and returns false.
bool fail(TestResult& r, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

using TestFn = void (*)(TestResult& r);
struct TestCase {
  const char* name;
  TestFn fn;
};
void run_test(const char* name, TestFn fn, const char* suffix);

}  // namespace guest
