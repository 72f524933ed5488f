// The test guest's entry in C++: reads the PVH start_info, selects tests from the command line
// (`tests=all` or `tests=a,b`; `all` takes a device test only when its device is present), runs
// them in registry order, prints `PASS name` / `FAIL name: reason` (with the registry's suffix,
// e.g. the virtio face) and a last line `N passed, M failed`, and exits through the debug-exit
// port with 0 only if all passed.
#include "bench.h"
#include "guest.h"
#include "tests.h"

namespace guest {

BootInfo boot_info;

namespace {

// hvm_start_info (Xen public/arch-x86/hvm/start_info.h), version 1.
struct StartInfo {
  uint32_t magic, version, flags, nr_modules;
  uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
  uint32_t memmap_entries, reserved;
};
struct MemmapEntry {
  uint64_t addr, size;
  uint32_t type, reserved;
};

char cmdline_copy[4096];
uint32_t passed = 0, failed = 0;

void read_start_info(uint32_t paddr) {
  auto* si = reinterpret_cast<const StartInfo*>(static_cast<uint64_t>(paddr));
  if (paddr == 0 || si->magic != 0x336ec578) {
    printf("FAIL boot: no PVH start_info (ebx=%x)\n0 passed, 1 failed\n", paddr);
    exit(1);
  }
  boot_info.cmdline_paddr = si->cmdline_paddr;
  boot_info.cmdline = "";
  if (si->cmdline_paddr != 0 && si->cmdline_paddr < (1ULL << 32)) {
    // Copied out: the area it lives in is RAM the tests may reuse.
    const char* src = reinterpret_cast<const char*>(si->cmdline_paddr);
    size_t n = 0;
    while (n + 1 < sizeof cmdline_copy && src[n]) {
      cmdline_copy[n] = src[n];
      ++n;
    }
    cmdline_copy[n] = 0;
    boot_info.cmdline = cmdline_copy;
  }
  boot_info.rsdp = si->rsdp_paddr;
  boot_info.nr_modules = si->nr_modules;
  boot_info.memmap_entries = 0;
  if (si->version >= 1 && si->memmap_paddr != 0) {
    auto* mm = reinterpret_cast<const MemmapEntry*>(si->memmap_paddr);
    for (uint32_t i = 0; i < si->memmap_entries && i < 32; ++i) {
      boot_info.memmap[i] = MemRange{mm[i].addr, mm[i].size, mm[i].type};
      boot_info.memmap_entries = i + 1;
    }
  }
}

bool name_in_list(const char* list, const char* name) {
  size_t n = strlen(name);
  const char* p = list;
  while (*p) {
    const char* start = p;
    while (*p && *p != ',') ++p;
    if (static_cast<size_t>(p - start) == n && memcmp(start, name, n) == 0) return true;
    if (*p == ',') ++p;
  }
  return false;
}

}  // namespace

void run_test(const char* name, TestFn fn, const char* suffix) {
  TestResult r;
  fn(r);
  if (r.ok) {
    ++passed;
    printf("PASS %s%s%s\n", name, suffix ? " " : "", suffix ? suffix : "");
  } else {
    ++failed;
    printf("FAIL %s%s%s: %s\n", name, suffix ? " " : "", suffix ? suffix : "", r.reason);
  }
}

}  // namespace guest

using namespace guest;

extern "C" void guest_main(uint32_t start_info) {
  serial_init();
  read_start_info(start_info);
  if (bench_exit_requested()) exit(0);  // tools/bench's start-up figure: before any set-up
  idt_init();
  pic_mask_all();
  apic_init();

  char list[1024];
  if (!cmdline_get("tests", list, sizeof list)) {
    memcpy(list, "all", 4);
  }
  bool all = name_in_list(list, "all");
  printf("ember test guest: tests=%s\n", list);

  // Names asked for that no test answers to are failures, not silently skipped.
  const char* p = list;
  while (*p) {
    char name[64];
    size_t n = 0;
    while (*p && *p != ',') {
      if (n + 1 < sizeof name) name[n++] = *p;
      ++p;
    }
    name[n] = 0;
    if (*p == ',') ++p;
    if (n == 0 || memcmp(name, "all", 4) == 0) continue;
    if (!test_exists(name)) {
      ++failed;
      printf("FAIL %s: unknown test\n", name);
    }
  }
  for (size_t i = 0; i < test_count(); ++i) {
    const TestCase& t = test_at(i);
    if (name_in_list(list, t.name) || (all && test_in_all(i))) {
      run_test(t.name, t.fn, test_suffix(i));
    }
  }
  printf("%u passed, %u failed\n", passed, failed);
  exit(failed == 0 && passed > 0 ? 0 : 1);
}
