// Benchmarks of the test guest, run only when named (never part of `tests=all`): tools/bench/run
// boots the guest under Ember, QEMU and kick-floor with one of these and reads the result lines.
//
//   bench-kick  kicks one queue kick.count=N times in a tight loop and reports the cost per kick
//   bench-blk   4 KiB virtio-blk reads, blk.count=N at each depth of blk.depth=1,32
//   bench-irq   kick -> interrupt -> handler round trips, irq.count=N (virtio-rng, or kick-floor
//               answering each kick with an MSI)
//   bench-exit  exits at once, right after reading the command line (start-up time and memory
//               of the monitor)
//
// Every benchmark prints one machine-readable line per figure,
//   BENCH <name> face=<legacy|modern> [depth=D] count=N cycles=C tsc_khz=K tsc=<source> ns=X.Y
// where `cycles` are TSC cycles over the whole timed loop (the host converts them with its own TSC
// frequency, the same for every monitor) and `ns` is the per-operation cost by the guest's
// estimate of that frequency. Under kick-floor (kick.port= and kick.mmio= on the command line) the
// kick is a write of 0 to that port (legacy face) or 16-bit write to that MMIO address (modern
// face); under a real VMM it is the notify register of virtio queue 0 on the chosen face.
#pragma once

#include "guest.h"

namespace guest {

void test_bench_kick(TestResult& r);
void test_bench_blk(TestResult& r);
void test_bench_irq(TestResult& r);
void test_bench_exit(TestResult& r);
// Whether the command line is exactly `tests=bench-exit`: main() then exits before setting
// anything up, so that the start-up figure is the monitor's and not this guest's (whose
// kernel-mode code is emulated on a PVM host, ~0.5 us an instruction).
bool bench_exit_requested();

// What a kick writes: `port` (16-bit out) when non-zero, else the 16-bit MMIO location `mmio`.
struct KickTarget {
  uint16_t port = 0;
  uint64_t mmio = 0;
  uint16_t value = 0;
};
// `count` kicks back to back (the timed loop of bench-kick), and one kick.
void kick_loop(const KickTarget& k, uint64_t count);
void kick_once(const KickTarget& k);
// Prints the BENCH line for `count` operations that took `cycles` TSC cycles.
void bench_report(const char* name, const char* extra, uint64_t count, uint64_t cycles);

}  // namespace guest
