// ACPI tables as written to guest memory: signatures, lengths, checksums, the RSDP -> XSDT ->
// FADT/MADT/MCFG -> DSDT chain, the MADT per CPU count, the MCFG entry, the DSDT's \_S5, _CRS
// and _PRT (decoded with a small AML reader here), and, when the `iasl` tool (Debian package
// acpica-tools) is installed, a disassembly and recompilation of every table by ACPICA.
// Offsets are literal values from the ACPI 6.5 specification, independent of Acpi.h's structs.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "devices/AcpiPm.h"
#include "vmm/Acpi.h"
#include "vmm/MemoryLayout.h"

namespace ember::vmm {
namespace {

using Bytes = std::vector<uint8_t>;
using namespace layout;

template <typename T>
T get(std::span<const uint8_t> v, size_t off) {
  T value{};
  EXPECT_LE(off + sizeof value, v.size());
  if (off + sizeof value <= v.size()) std::memcpy(&value, v.data() + off, sizeof value);
  return value;
}

uint8_t sum(std::span<const uint8_t> v) {
  unsigned s = 0;
  for (uint8_t b : v) s += b;
  return static_cast<uint8_t>(s);
}

GuestMemory lowMemory() {
  GuestRegionSpec spec[] = {{GuestAddress(0), 2 * MiB}};
  auto m = GuestMemory::create(spec);
  EXPECT_TRUE(m.ok());
  return std::move(*m);
}

// The guest's view: tables read back from memory by following the pointers.
struct Tables {
  uint64_t rsdp_addr = 0;
  Bytes rsdp;
  std::map<std::string, Bytes> by_sig;
  std::map<std::string, uint64_t> addr;
};

Bytes readTable(const GuestMemory& mem, uint64_t addr) {
  Bytes hdr(36);
  EXPECT_TRUE(mem.read(GuestAddress(addr), hdr).ok());
  uint32_t len = get<uint32_t>(hdr, 4);
  EXPECT_GE(len, 36u);
  EXPECT_GE(addr, kAcpiStart);
  EXPECT_LE(addr + len, 0x100000u) << "table at " << addr << " leaves the BIOS area";
  Bytes t(len);
  EXPECT_TRUE(mem.read(GuestAddress(addr), t).ok());
  return t;
}

Tables loadTables(const AcpiConfig& config) {
  auto mem = lowMemory();
  auto r = writeAcpiTables(mem, config);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  Tables t;
  if (!r.ok()) return t;
  t.rsdp_addr = *r;
  t.rsdp.resize(36);
  EXPECT_TRUE(mem.read(GuestAddress(*r), t.rsdp).ok());
  uint64_t xsdt = get<uint64_t>(t.rsdp, 24);
  t.by_sig["XSDT"] = readTable(mem, xsdt);
  t.addr["XSDT"] = xsdt;
  const Bytes& x = t.by_sig["XSDT"];
  for (size_t off = 36; off + 8 <= x.size(); off += 8) {
    uint64_t a = get<uint64_t>(x, off);
    Bytes tab = readTable(mem, a);
    std::string sig(tab.begin(), tab.begin() + 4);
    t.addr[sig] = a;
    t.by_sig[sig] = std::move(tab);
  }
  if (t.by_sig.count("FACP")) {
    uint64_t dsdt = get<uint64_t>(t.by_sig["FACP"], 140);  // X_DSDT
    t.by_sig["DSDT"] = readTable(mem, dsdt);
    t.addr["DSDT"] = dsdt;
  }
  return t;
}

// --- a minimal AML reader, enough for the packages of integers in \_S5 and _PRT ---

struct AmlReader {
  std::span<const uint8_t> b;
  size_t pos = 0;
  bool failed = false;

  uint8_t next() {
    if (pos >= b.size()) {
      failed = true;
      return 0;
    }
    return b[pos++];
  }
  uint64_t le(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{next()} << (8 * i);
    return v;
  }
  // Section 20.2.4: returns the total length (PkgLength bytes included).
  uint64_t pkgLength() {
    uint8_t lead = next();
    int follow = lead >> 6;
    if (follow == 0) return lead & 0x3f;
    uint64_t v = lead & 0x0f;
    for (int i = 0; i < follow; ++i) v |= uint64_t{next()} << (4 + 8 * i);
    return v;
  }
  std::optional<uint64_t> integer() {
    switch (next()) {
      case 0x00:
        return 0;
      case 0x01:
        return 1;
      case 0x0a:
        return le(1);
      case 0x0b:
        return le(2);
      case 0x0c:
        return le(4);
      case 0x0e:
        return le(8);
      default:
        failed = true;
        return std::nullopt;
    }
  }
  // A Package of integers or of packages of integers (one level).
  std::vector<std::vector<uint64_t>> packageOfPackages() {
    std::vector<std::vector<uint64_t>> out;
    if (next() != 0x12) {
      failed = true;
      return out;
    }
    size_t start = pos;
    uint64_t len = pkgLength();
    size_t end = start + len;
    uint8_t count = next();
    for (int i = 0; i < count && !failed; ++i) {
      if (pos < b.size() && b[pos] == 0x12) {
        out.push_back(packageOfIntegers());
      } else {
        out.push_back({integer().value_or(0)});
      }
    }
    EXPECT_EQ(pos, end) << "package length does not match its contents";
    return out;
  }
  std::vector<uint64_t> packageOfIntegers() {
    std::vector<uint64_t> out;
    if (next() != 0x12) {
      failed = true;
      return out;
    }
    size_t start = pos;
    uint64_t len = pkgLength();
    uint8_t count = next();
    for (int i = 0; i < count && !failed; ++i) out.push_back(integer().value_or(0));
    EXPECT_EQ(pos, start + len);
    return out;
  }
};

// Finds `NameOp [RootChar] <seg>` in the AML and returns the reader positioned at its value.
std::optional<AmlReader> findName(const Bytes& aml, const char (&seg)[5]) {
  std::optional<AmlReader> found;
  for (size_t i = 36; i + 6 <= aml.size(); ++i) {
    if (aml[i] != 0x08) continue;
    size_t name = aml[i + 1] == 0x5c ? i + 2 : i + 1;
    if (std::memcmp(aml.data() + name, seg, 4) == 0) {
      EXPECT_FALSE(found.has_value()) << "two definitions of " << seg;
      found = AmlReader{aml, name + 4};
    }
  }
  return found;
}

bool contains(const Bytes& hay, const Bytes& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// --- the tables ---

TEST(Acpi, RsdpIsARevision2PointerAtTheBiosArea) {
  auto t = loadTables({});
  ASSERT_EQ(t.rsdp.size(), 36u);
  EXPECT_EQ(t.rsdp_addr, 0xe0000u);
  EXPECT_EQ(t.rsdp_addr % 16, 0u);  // the BIOS-area scan looks at 16-byte boundaries
  EXPECT_EQ(std::string(t.rsdp.begin(), t.rsdp.begin() + 8), "RSD PTR ");
  EXPECT_EQ(sum(std::span(t.rsdp).first(20)), 0);  // ACPI 1.0 checksum
  EXPECT_EQ(sum(t.rsdp), 0);                       // extended checksum
  EXPECT_EQ(std::string(t.rsdp.begin() + 9, t.rsdp.begin() + 15), "EMBER ");
  EXPECT_EQ(t.rsdp[15], 2);                   // revision
  EXPECT_EQ(get<uint32_t>(t.rsdp, 20), 36u);  // length
  EXPECT_NE(get<uint64_t>(t.rsdp, 24), 0u);   // XSDT
}

TEST(Acpi, EveryTableHasItsSignatureLengthChecksumAndOemId) {
  auto t = loadTables({2, 0x100000000, 0x40000000});
  for (const char* sig : {"XSDT", "FACP", "DSDT", "APIC", "MCFG"}) {
    ASSERT_TRUE(t.by_sig.count(sig)) << sig;
    const Bytes& b = t.by_sig[sig];
    EXPECT_EQ(get<uint32_t>(b, 4), b.size()) << sig;
    EXPECT_EQ(sum(b), 0) << sig << " checksum";
    EXPECT_EQ(std::string(b.begin() + 10, b.begin() + 16), "EMBER ") << sig;
    EXPECT_EQ(t.addr[sig] % 8, 0u) << sig;
  }
  // The XSDT points at exactly the FADT, the MADT and the MCFG (the DSDT hangs off the FADT).
  const Bytes& x = t.by_sig["XSDT"];
  EXPECT_EQ(x.size(), 36u + 3 * 8);
  EXPECT_EQ(t.by_sig.size(), 5u);
  // No two tables overlap.
  std::vector<std::pair<uint64_t, uint64_t>> ranges{{t.rsdp_addr, t.rsdp_addr + 36}};
  for (auto& [sig, b] : t.by_sig) ranges.push_back({t.addr[sig], t.addr[sig] + b.size()});
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
}

TEST(Acpi, FadtIsHardwareReducedWithSleepAndResetRegisters) {
  auto t = loadTables({});
  const Bytes& f = t.by_sig["FACP"];
  ASSERT_EQ(f.size(), 276u);  // revision 6 layout
  EXPECT_EQ(f[8], 6);         // major version
  EXPECT_EQ(f[131], 5);       // minor version
  uint32_t flags = get<uint32_t>(f, 112);
  EXPECT_TRUE(flags & (1u << 20)) << "HW_REDUCED_ACPI";
  EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
  EXPECT_EQ(get<uint32_t>(f, 40), 0u);  // 32-bit DSDT unused
  EXPECT_EQ(get<uint64_t>(f, 140), t.addr["DSDT"]);
  EXPECT_EQ(get<uint16_t>(f, 46), 0u);  // no SCI
  EXPECT_EQ(get<uint32_t>(f, 56), 0u);  // no PM1a event block
  EXPECT_EQ(get<uint32_t>(f, 64), 0u);  // no PM1a control block
  EXPECT_EQ(get<uint32_t>(f, 76), 0u);  // no PM timer
  EXPECT_EQ(f[108], 0x32);              // CENTURY: the RTC's century register
  uint16_t boot_arch = get<uint16_t>(f, 109);
  EXPECT_FALSE(boot_arch & (1u << 5)) << "CMOS_RTC_NOT_PRESENT: the RTC is there";
  EXPECT_TRUE(boot_arch & (1u << 2)) << "VGA Not Present";
  EXPECT_TRUE(boot_arch & (1u << 1)) << "8042: the i8042's keyboard takes SendCtrlAltDel";
  // Generic Address Structures: space 1 (system I/O), 8 bits wide, offset 0, byte access.
  auto gas = [&](size_t off, uint64_t port) {
    EXPECT_EQ(f[off], 1) << off;
    EXPECT_EQ(f[off + 1], 8) << off;
    EXPECT_EQ(f[off + 2], 0) << off;
    EXPECT_EQ(f[off + 3], 1) << off;
    EXPECT_EQ(get<uint64_t>(f, off + 4), port) << off;
  };
  gas(116, devices::AcpiPm::kResetPort);  // RESET_REG
  EXPECT_EQ(f[128], devices::AcpiPm::kResetValue);
  gas(244, devices::AcpiPm::kSleepControlPort);  // SLEEP_CONTROL_REG
  gas(256, devices::AcpiPm::kSleepStatusPort);   // SLEEP_STATUS_REG
  EXPECT_EQ(devices::AcpiPm::kSleepControlPort, 0x600);
  EXPECT_EQ(devices::AcpiPm::kSleepStatusPort, 0x601);
  EXPECT_EQ(devices::AcpiPm::kResetPort, 0x602);
}

TEST(Acpi, MadtHasOneEnabledLocalApicPerCpuAndTheIoApic) {
  for (uint32_t cpus : {1u, 2u, 8u, 64u, acpi::kMaxCpus}) {
    auto t = loadTables({cpus, 0, 0});
    const Bytes& m = t.by_sig["APIC"];
    ASSERT_EQ(m.size(), 44u + 8 * cpus + 12 + 10 + 6) << cpus;
    EXPECT_EQ(get<uint32_t>(m, 36), 0xfee00000u);  // local APIC address
    EXPECT_EQ(get<uint32_t>(m, 40) & 1, 1u);       // PCAT_COMPAT
    size_t off = 44;
    for (uint32_t i = 0; i < cpus; ++i, off += 8) {
      ASSERT_EQ(m[off], 0) << "type: processor local APIC";
      ASSERT_EQ(m[off + 1], 8);
      EXPECT_EQ(m[off + 2], i);  // ACPI processor UID
      EXPECT_EQ(m[off + 3], i);  // APIC ID
      EXPECT_EQ(get<uint32_t>(m, off + 4), 1u) << "enabled";
    }
    ASSERT_EQ(m[off], 1) << "type: I/O APIC";
    ASSERT_EQ(m[off + 1], 12);
    EXPECT_EQ(m[off + 2], cpus);  // I/O APIC ID after the CPUs'
    EXPECT_EQ(get<uint32_t>(m, off + 4), 0xfec00000u);
    EXPECT_EQ(get<uint32_t>(m, off + 8), 0u);  // GSI base
    off += 12;
    ASSERT_EQ(m[off], 2) << "type: interrupt source override";
    ASSERT_EQ(m[off + 1], 10);
    EXPECT_EQ(m[off + 2], 0);                  // ISA
    EXPECT_EQ(m[off + 3], 0);                  // IRQ 0
    EXPECT_EQ(get<uint32_t>(m, off + 4), 2u);  // -> GSI 2
    EXPECT_EQ(get<uint16_t>(m, off + 8), 0u);  // conforms to ISA: edge, active high
    off += 10;
    ASSERT_EQ(m[off], 4) << "type: local APIC NMI";
    ASSERT_EQ(m[off + 1], 6);
    EXPECT_EQ(m[off + 2], 0xff);
    EXPECT_EQ(m[off + 5], 1);  // LINT1
  }
}

TEST(Acpi, MadtRefusesCpuCountsItCannotDescribe) {
  auto mem = lowMemory();
  EXPECT_FALSE(writeAcpiTables(mem, {0, 0, 0}).ok());
  auto r = writeAcpiTables(mem, {acpi::kMaxCpus + 1, 0, 0});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
}

TEST(Acpi, McfgDescribesBusZeroAtTheEcamBase) {
  auto t = loadTables({});
  const Bytes& m = t.by_sig["MCFG"];
  ASSERT_EQ(m.size(), 36u + 8 + 16);
  EXPECT_EQ(get<uint64_t>(m, 44), 0xe0000000u);  // base address
  EXPECT_EQ(get<uint16_t>(m, 52), 0u);           // segment
  EXPECT_EQ(m[54], 0);                           // start bus
  EXPECT_EQ(m[55], 0);                           // end bus
}

TEST(Acpi, DsdtAdvertisesS5WithTheSleepTypeAcpiPmAccepts) {
  auto t = loadTables({});
  const Bytes& d = t.by_sig["DSDT"];
  EXPECT_EQ(d[8], 2) << "revision 2: 64-bit integers";
  auto r = findName(d, "_S5_");
  ASSERT_TRUE(r.has_value());
  auto s5 = r->packageOfIntegers();
  ASSERT_FALSE(r->failed);
  ASSERT_GE(s5.size(), 1u);
  EXPECT_EQ(s5[0], devices::AcpiPm::kS5SleepType);
  // It is \_S5, at the root.
  EXPECT_TRUE(contains(d, {0x08, 0x5c, '_', 'S', '5', '_'}));
}

TEST(Acpi, DsdtRoutesIntxOfEverySlotByTheGsiRule) {
  auto t = loadTables({});
  auto r = findName(t.by_sig["DSDT"], "_PRT");
  ASSERT_TRUE(r.has_value());
  auto prt = r->packageOfPackages();
  ASSERT_FALSE(r->failed);
  ASSERT_EQ(prt.size(), 31u * 4);
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> seen;
  for (const auto& e : prt) {
    ASSERT_EQ(e.size(), 4u);
    EXPECT_EQ(e[0] & 0xffff, 0xffffu) << "any function";
    uint32_t slot = static_cast<uint32_t>(e[0] >> 16);
    uint32_t pin = static_cast<uint32_t>(e[1]);
    EXPECT_GE(slot, 1u);
    EXPECT_LE(slot, 31u);
    EXPECT_LE(pin, 3u);
    EXPECT_EQ(e[2], 0u) << "global interrupt";
    EXPECT_EQ(e[3], 16 + (slot + pin) % 8) << "slot " << slot << " pin " << pin;
    EXPECT_EQ(e[3], acpi::pciIntxGsi(slot, pin));
    seen[{slot, pin}] = e[3];
  }
  EXPECT_EQ(seen.size(), 124u);
  EXPECT_EQ(seen[std::make_pair(1u, 0u)], 17u);
  EXPECT_EQ(seen[std::make_pair(7u, 1u)], 16u);
  EXPECT_EQ(seen[std::make_pair(31u, 3u)], 18u);
}

TEST(Acpi, DsdtDescribesTheHostBridgeAndCom1) {
  auto t = loadTables({1, 0x100000000, 0x40000000});
  const Bytes& d = t.by_sig["DSDT"];
  EXPECT_TRUE(contains(d, {0x5b, 0x82}));  // a Device
  EXPECT_TRUE(contains(d, {'P', 'C', 'I', '0'}));
  EXPECT_TRUE(contains(d, {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08}));  // PNP0A08
  EXPECT_TRUE(contains(d, {'_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03}));  // PNP0A03
  EXPECT_TRUE(contains(d, {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01}));  // PNP0501
  EXPECT_TRUE(contains(d, {'_', 'S', 'E', 'G', 0x00}));
  EXPECT_TRUE(contains(d, {'_', 'B', 'B', 'N', 0x00}));
  // _CRS: bus 0-0, the 0xcf8 ports, the I/O window, the 32-bit and 64-bit MMIO windows.
  EXPECT_TRUE(contains(d, {0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_TRUE(contains(d, {0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08}));
  EXPECT_TRUE(contains(d, {0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0xc0, 0xff, 0xff}));
  EXPECT_TRUE(contains(d, {0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0,
                           0xff, 0xff, 0xff, 0xdf}));
  EXPECT_TRUE(
      contains(d, {0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x01, 0, 0,    0,    0,    0,    0, 0, 0, 0,
                   0,    0,    0,    1,    0,    0,    0, 0xff, 0xff, 0xff, 0x3f, 1, 0, 0, 0}));
  // COM1: ports 0x3f8-0x3ff and IRQ 4.
  EXPECT_TRUE(contains(d, {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, 0x22, 0x10, 0x00}));
  // The RTC: PNP0B00, ports 0x70-0x71 and IRQ 8.
  EXPECT_TRUE(contains(d, {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0b, 0x00}));  // PNP0B00
  EXPECT_TRUE(contains(d, {0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x22, 0x00, 0x01}));
  // The keyboard: PNP0303, ports 0x60 and 0x64 and IRQ 1.
  EXPECT_TRUE(contains(d, {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03}));  // PNP0303
  EXPECT_TRUE(contains(d, {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47, 0x01, 0x64, 0x00,
                           0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00}));
  // The ECAM area is reserved by a PNP0C02 device.
  EXPECT_TRUE(contains(d, {0x0c, 0x41, 0xd0, 0x0c, 0x02}));
  EXPECT_TRUE(contains(d, {0x86, 0x09, 0x00, 0x00, 0, 0, 0, 0xe0, 0, 0, 0, 0x10}));

  // Without a 64-bit window there is no QWord descriptor.
  auto t2 = loadTables({1, 0, 0});
  EXPECT_FALSE(contains(t2.by_sig["DSDT"], {0x8a, 0x2b, 0x00}));
}

TEST(Acpi, RefusesA64BitWindowThatWraps) {
  auto mem = lowMemory();
  auto r = writeAcpiTables(mem, {1, UINT64_MAX - 10, 100});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
}

TEST(Acpi, NeedsTheBiosAreaInRam) {
  GuestRegionSpec spec[] = {{GuestAddress(0), 512 * KiB}};
  auto mem = GuestMemory::create(spec);
  ASSERT_TRUE(mem.ok());
  EXPECT_FALSE(writeAcpiTables(*mem, {}).ok());
}

// --- ACPICA's own opinion, when its tools are installed ---

std::string runCommand(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Acpi, IaslDisassemblesAndRecompilesEveryTable) {
  int status = 0;
  runCommand("iasl -v", status);
  if (status != 0) {
    GTEST_SKIP() << "iasl not installed (Debian package acpica-tools)";
  }
  char tmpl[] = "/tmp/ember-acpi-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  auto t = loadTables({4, 0x100000000, 0x40000000});
  for (auto& [sig, bytes] : t.by_sig) {
    std::ofstream(dir / (sig + ".dat"), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());  // table bytes
    std::string log = runCommand("cd " + dir.string() + " && iasl -d " + sig + ".dat", status);
    EXPECT_EQ(status, 0) << sig << ":\n" << log;
    std::string dsl = readFile(dir / (sig + ".dsl"));
    EXPECT_FALSE(dsl.empty()) << sig;
    EXPECT_EQ(dsl.find("**** ACPI Error"), std::string::npos) << sig << ":\n" << dsl;
    EXPECT_EQ(log.find("Error"), std::string::npos) << sig << ":\n" << log;
    EXPECT_EQ(dsl.find("Incorrect checksum"), std::string::npos) << sig << ":\n" << dsl;
    EXPECT_EQ(dsl.find("Invalid"), std::string::npos) << sig << ":\n" << dsl;
    // Recompiling ACPICA's disassembly must succeed without errors.
    log = runCommand("cd " + dir.string() + " && iasl -p " + sig + "-re " + sig + ".dsl", status);
    EXPECT_EQ(status, 0) << sig << " recompile:\n" << log << "\n" << dsl;
    EXPECT_NE(log.find(" 0 Errors"), std::string::npos) << sig << ":\n" << log;
  }
  // The disassembled DSDT names what Ember put there.
  std::string dsdt = readFile(dir / "DSDT.dsl");
  for (const char* want :
       {"Device (PCI0)", "EisaId (\"PNP0A08\")", "EisaId (\"PNP0A03\")", "Device (COM1)",
        "EisaId (\"PNP0501\")", "Device (RTC)", "EisaId (\"PNP0B00\")", "Device (KBD)",
        "EisaId (\"PNP0303\")", "Name (\\_S5,", "Name (_PRT,", "WordBusNumber", "QWordMemory",
        "DWordMemory", "WordIO", "IRQNoFlags", "Memory32Fixed",
        "Method (_STA, 0, NotSerialized)"}) {
    EXPECT_NE(dsdt.find(want), std::string::npos) << want << "\n" << dsdt;
  }
  std::filesystem::remove_all(dir);
}

TEST(Acpi, AcpicaLoadsTheDsdtAndEvaluatesItsObjects) {
  // acpiexec (acpica-tools) runs ACPICA's interpreter, the one Linux uses, over the tables.
  int status = 0;
  runCommand("acpiexec -v", status);
  if (status != 0) {
    GTEST_SKIP() << "acpiexec not installed (Debian package acpica-tools)";
  }
  char tmpl[] = "/tmp/ember-acpiexec-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir(tmpl);
  auto t = loadTables({4, 0x100000000, 0x40000000});
  for (auto& [sig, bytes] : t.by_sig) {
    if (sig == "XSDT") continue;  // acpiexec builds its own RSDP and XSDT
    std::ofstream(dir / (sig + ".dat"), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());  // table bytes
  }
  std::string out =
      runCommand("cd " + dir.string() +
                     " && timeout 60 acpiexec -b 'evaluate \\_S5; evaluate \\_SB.COM1._STA; "
                     "resources \\_SB.PCI0; resources \\_SB.COM1; resources \\_SB.MRES; "
                     "resources \\_SB.RTC_; resources \\_SB.KBD_' "
                     "DSDT.dat FACP.dat APIC.dat MCFG.dat",
                 status);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(status, 0) << out;
  for (const char* bad : {"ACPI Error", "ACPI Exception", "AE_AML_", "Warning"}) {
    EXPECT_EQ(out.find(bad), std::string::npos) << bad << "\n" << out;
  }
  for (const char* want : {"1 ACPI AML tables successfully acquired and loaded",
                           "[Integer] = 0000000000000005",  // \_S5's SLP_TYP
                           "[Integer] = 000000000000000F",  // COM1._STA
                           "[00] PCI IRQ Routing Table Package",
                           "[7B] PCI IRQ Routing Table Package",
                           "Resource Type : Bus Number Range",
                           "Address Minimum : 0CF8",
                           "Address Minimum : C000",
                           "Address Maximum : FFFF",
                           "Address Minimum : C0000000",
                           "Address Maximum : DFFFFFFF",
                           "Address Minimum : 0000000100000000",
                           "Address Maximum : 000000013FFFFFFF",
                           "Address Minimum : 03F8",
                           "Interrupt List : 4",
                           "Address : E0000000",
                           "Address Minimum : 0070",
                           "Interrupt List : 8",
                           "Address Minimum : 0064",
                           "Interrupt List : 1"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
  EXPECT_EQ(out.find("[7C] PCI IRQ Routing Table Package"), std::string::npos);
}

}  // namespace
}  // namespace ember::vmm
