// Building Ember's ACPI tables and laying them out in the BIOS area.
#include "vmm/Acpi.h"

#include <cstring>

#include "devices/AcpiPm.h"
#include "devices/CmosRtc.h"
#include "devices/I8042.h"
#include "vmm/Aml.h"
#include "vmm/MemoryLayout.h"

namespace ember::vmm {

using namespace acpi;

namespace {

using devices::AcpiPm;

constexpr char kOemId[6] = {'E', 'M', 'B', 'E', 'R', ' '};
constexpr char kOemTableId[8] = {'E', 'M', 'B', 'E', 'R', 'V', 'M', ' '};
constexpr char kCreatorId[4] = {'E', 'M', 'B', 'R'};
constexpr uint64_t kAcpiEnd = layout::kHighMemoryStart;  // the BIOS area ends at 1 MiB
constexpr uint64_t kTableAlignment = 16;

// Section 5.2.3.2 Generic Address Structure values.
constexpr uint8_t kSystemIo = 1;
constexpr uint8_t kByteAccess = 1;

template <typename T>
void appendObj(std::vector<uint8_t>& out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  // resize + memcpy rather than insert(): GCC 12 at -O3 misreads an insert into an empty vector
  // as an overflow (-Wstringop-overflow) and -Werror would fail a Release build.
  size_t at = out.size();
  out.resize(at + sizeof value);
  std::memcpy(out.data() + at, &value, sizeof value);
}

TableHeader makeHeader(const char (&signature)[5], uint8_t revision) {
  TableHeader h{};
  std::memcpy(h.signature, signature, 4);
  h.revision = revision;
  std::memcpy(h.oem_id, kOemId, sizeof kOemId);
  std::memcpy(h.oem_table_id, kOemTableId, sizeof kOemTableId);
  h.oem_revision = 1;
  std::memcpy(h.creator_id, kCreatorId, sizeof kCreatorId);
  h.creator_revision = 1;
  return h;
}

// Section 5.2.6: fills in Length and makes the whole table sum to zero.
void finishTable(std::vector<uint8_t>& table) {
  uint32_t length = static_cast<uint32_t>(table.size());
  std::memcpy(table.data() + offsetof(TableHeader, length), &length, sizeof length);
  table[offsetof(TableHeader, checksum)] = 0;
  table[offsetof(TableHeader, checksum)] = static_cast<uint8_t>(-byteSum(table));
}

GenericAddress ioPort(uint16_t port) {
  return GenericAddress{kSystemIo, 8, 0, kByteAccess, port};
}

// The DSDT's body: \_S5 and the \_SB devices.
aml::Term dsdtBody(const AcpiConfig& config) {
  using namespace aml;
  using namespace layout;

  // Section 7.4.2 \_Sx: a package whose first element is the SLP_TYPx value for the sleep
  // control register (section 4.8.3.7) in hardware-reduced ACPI; the others are reserved here.
  Term s5 = name("\\_S5", package({integer(AcpiPm::kS5SleepType), zero(), zero(), zero()}));

  // Section 6.4.3.5: the host bridge's windows are produced ranges.
  std::vector<Term> crs = {
      res::wordBusNumber(0, 0),
      res::io(0xcf8, 0xcf8, 1, 8),  // the configuration mechanism #1 ports
      res::wordIo(static_cast<uint16_t>(kPciIoStart),
                  static_cast<uint16_t>(kPciIoStart + kPciIoSize - 1)),
      res::dwordMemory(static_cast<uint32_t>(kPciMmio32Start),
                       static_cast<uint32_t>(kPciMmio32Start + kPciMmio32Size - 1), false),
  };
  if (config.pci_mmio64_size != 0) {
    crs.push_back(res::qwordMemory(config.pci_mmio64_base,
                                   config.pci_mmio64_base + config.pci_mmio64_size - 1, false));
  }

  // Section 6.2.13 _PRT: Package { Address (device << 16 | 0xffff: any function), Pin (0-3 for
  // INTA-INTD), Source (Zero: a global system interrupt), Source Index (the GSI) }.
  std::vector<Term> prt;
  for (uint32_t slot = kPrtFirstSlot; slot <= kPrtLastSlot; ++slot) {
    for (uint32_t pin = 0; pin < 4; ++pin) {
      prt.push_back(package({integer((uint64_t{slot} << 16) | 0xffff), integer(pin), zero(),
                             integer(pciIntxGsi(slot, pin))}));
    }
  }

  // Section 6.1.5 _HID / _CID, 6.5.6 _SEG, 6.5.5 _BBN, 6.1.12 _UID, 6.2.2 _CRS; PCI Firmware
  // Specification 3.2, section 4.5: PNP0A08 (PCI Express) compatible with PNP0A03 (PCI).
  Term pci0 = device("PCI0", {name("_HID", eisaId("PNP0A08")), name("_CID", eisaId("PNP0A03")),
                              name("_SEG", zero()), name("_BBN", zero()), name("_UID", zero()),
                              name("_CRS", resourceTemplate(crs)), name("_PRT", package(prt))});

  // PCI Firmware Specification 3.2, section 4.1.2: the ECAM area is reserved by a motherboard
  // resource device (PNP0C02), which is where Linux looks before trusting the MCFG.
  Term mres = device("MRES", {name("_HID", eisaId("PNP0C02")), name("_UID", zero()),
                              name("_CRS", resourceTemplate({res::memory32Fixed(
                                               static_cast<uint32_t>(kEcamStart),
                                               static_cast<uint32_t>(kEcamSize), false)}))});

  // The 16550 UART at COM1 (PNP0501); section 6.3.7 _STA: present, enabled, shown, working.
  Term com1 = device("COM1", {name("_HID", eisaId("PNP0501")), name("_UID", one()),
                              method("_STA", 0, false, {returnValue(integer(0x0f))}),
                              name("_CRS", resourceTemplate({res::io(kCom1Port, kCom1Port, 0, 8),
                                                             res::irqNoFlags(kCom1Irq)}))});

  // The MC146818 real-time clock (PNP0B00, "AT real-time clock"): its two ports and ISA IRQ 8.
  Term rtc = device(
      "RTC",
      {name("_HID", eisaId("PNP0B00")),
       name("_CRS", resourceTemplate({res::io(devices::CmosRtc::kBase, devices::CmosRtc::kBase, 1,
                                              devices::CmosRtc::kSize),
                                      res::irqNoFlags(devices::CmosRtc::kIrq)}))});

  // The i8042's PS/2 keyboard (PNP0303, "IBM Enhanced keyboard"): the data and status ports and
  // ISA IRQ 1. No PS/2 mouse (PNP0F13) is described: the controller has none.
  Term kbd = device(
      "KBD", {name("_HID", eisaId("PNP0303")),
              name("_CRS", resourceTemplate(
                               {res::io(devices::I8042::kBase, devices::I8042::kBase, 1, 1),
                                res::io(devices::I8042::kBase + 4, devices::I8042::kBase + 4, 1, 1),
                                res::irqNoFlags(devices::I8042::kIrq)}))});

  Term body = s5;
  body.append(scope("\\_SB", {pci0, mres, com1, rtc, kbd}));
  return body;
}

uint64_t alignUp(uint64_t v) {
  return (v + kTableAlignment - 1) / kTableAlignment * kTableAlignment;
}

}  // namespace

namespace acpi {

uint8_t byteSum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) {
    sum = static_cast<uint8_t>(sum + b);
  }
  return sum;
}

Result<std::vector<uint8_t>> buildDsdt(const AcpiConfig& config) {
  if (config.pci_mmio64_size != 0) {
    uint64_t end = 0;
    if (__builtin_add_overflow(config.pci_mmio64_base, config.pci_mmio64_size - 1, &end)) {
      return makeError(Errc::InvalidArgument, "64-bit PCI window {:#x} + {:#x} overflows",
                       config.pci_mmio64_base, config.pci_mmio64_size);
    }
  }
  auto body = EMBER_TRY(dsdtBody(config).take());
  // Section 5.2.11.1: a DSDT of revision 2 or more evaluates integers as 64 bits (needed for the
  // QWord window).
  std::vector<uint8_t> table;
  appendObj(table, makeHeader("DSDT", 2));
  table.insert(table.end(), body.begin(), body.end());
  finishTable(table);
  return table;
}

Result<std::vector<uint8_t>> buildMadt(const AcpiConfig& config) {
  if (config.cpus == 0 || config.cpus > kMaxCpus) {
    return makeError(Errc::InvalidArgument, "the MADT describes 1 to {} vCPUs, not {}", kMaxCpus,
                     config.cpus);
  }
  std::vector<uint8_t> table;
  appendObj(table, makeHeader("APIC", 6));  // section 5.2.12, MADT revision 6 (ACPI 6.5)
  appendObj(table, MadtFixed{static_cast<uint32_t>(layout::kLapicAddress), kMadtPcatCompat});
  for (uint32_t i = 0; i < config.cpus; ++i) {
    // 5.2.12.2: processor UID and APIC ID both the vCPU index (Ember's vCPU ids are APIC ids).
    appendObj(table, MadtLocalApic{0, 8, static_cast<uint8_t>(i), static_cast<uint8_t>(i),
                                   kMadtLocalApicEnabled});
  }
  // 5.2.12.3: the I/O APIC takes the first ID after the CPUs' and serves GSIs from 0.
  appendObj(table, MadtIoApic{1, 12, static_cast<uint8_t>(config.cpus), 0,
                              static_cast<uint32_t>(layout::kIoapicAddress), kIoapicGsiBase});
  // 5.2.12.5: ISA IRQ 0 (the PIT) arrives on I/O APIC input 2; flags 0 conform to ISA (edge,
  // active high). Hardware-reduced ACPI has no SCI, so no IRQ 9 override.
  appendObj(table, MadtInterruptOverride{2, 10, 0, 0, 2, 0});
  // 5.2.12.7: LINT1 of every processor is the NMI input (flags 0: bus default).
  appendObj(table, MadtLocalApicNmi{4, 6, 0xff, 0, 1});
  finishTable(table);
  return table;
}

std::vector<uint8_t> buildMcfg() {
  // PCI Firmware Specification 3.2, 4.1.2: header, 8 reserved bytes, one allocation per segment
  // range. Ember's host bridge decodes bus 0 only.
  std::vector<uint8_t> table;
  appendObj(table, makeHeader("MCFG", 1));
  appendObj(table, uint64_t{0});
  appendObj(table, McfgAllocation{layout::kEcamStart, 0, 0, 0, 0});
  finishTable(table);
  return table;
}

std::vector<uint8_t> buildFadt(uint64_t dsdt_address) {
  Fadt f{};
  f.header = makeHeader("FACP", 6);  // FADT major version 6
  f.minor_version = 5;               // ACPI 6.5
  // Section 5.2.9: with X_DSDT set, the 32-bit DSDT field is left 0 (OSPM uses X_DSDT).
  f.x_dsdt = dsdt_address;
  // Table 5.10: hardware-reduced ACPI (no PM1/GPE blocks, no SCI: all of those stay 0), the
  // reset register is supported, and there are no fixed-feature power or sleep buttons.
  f.flags = kFadtHwReducedAcpi | kFadtResetRegSup | kFadtPwrButton | kFadtSlpButton;
  // Table 5.11: no VGA; an 8042, whose keyboard (devices/I8042, PNP0303 in the DSDT) takes
  // SendCtrlAltDel; the reset register below is what ACPI reboots use, the i8042's reset line
  // what reboot=k uses. The CMOS RTC is present (devices/CmosRtc, PNP0B00 in the DSDT), so
  // CMOS_RTC_NOT_PRESENT stays clear, and section 5.2.9's CENTURY names its century register.
  f.iapc_boot_arch = kBootArchVgaNotPresent | kBootArch8042;
  f.century = devices::CmosRtc::kCenturyRegister;
  // Section 4.8.3.6: RESET_REG is an 8-bit register at bit offset 0.
  f.reset_reg = ioPort(AcpiPm::kResetPort);
  f.reset_value = AcpiPm::kResetValue;
  // Section 4.8.3.7: the hardware-reduced sleep control and status registers.
  f.sleep_control_reg = ioPort(AcpiPm::kSleepControlPort);
  f.sleep_status_reg = ioPort(AcpiPm::kSleepStatusPort);
  std::vector<uint8_t> table;
  appendObj(table, f);
  finishTable(table);
  return table;
}

std::vector<uint8_t> buildXsdt(std::span<const uint64_t> tables) {
  // Section 5.2.8: the header, then one 64-bit physical address per table.
  std::vector<uint8_t> table;
  appendObj(table, makeHeader("XSDT", 1));
  for (uint64_t addr : tables) {
    appendObj(table, addr);
  }
  finishTable(table);
  return table;
}

std::vector<uint8_t> buildRsdp(uint64_t xsdt_address) {
  // Section 5.2.5.3: revision 2, no RSDT (an XSDT is all a 64-bit OS reads); the checksum covers
  // the ACPI 1.0 part (20 bytes), the extended checksum the whole structure.
  Rsdp r{};
  std::memcpy(r.signature, "RSD PTR ", 8);
  std::memcpy(r.oem_id, kOemId, sizeof kOemId);
  r.revision = 2;
  r.length = sizeof(Rsdp);
  r.xsdt_address = xsdt_address;
  std::vector<uint8_t> bytes;
  appendObj(bytes, r);
  bytes[offsetof(Rsdp, checksum)] = static_cast<uint8_t>(-byteSum(std::span(bytes).first(20)));
  bytes[offsetof(Rsdp, extended_checksum)] = static_cast<uint8_t>(-byteSum(bytes));
  return bytes;
}

}  // namespace acpi

Result<uint64_t> writeAcpiTables(const GuestMemory& mem, const AcpiConfig& config) {
  auto dsdt = EMBER_TRY(buildDsdt(config));
  auto madt = EMBER_TRY(buildMadt(config));
  auto mcfg = buildMcfg();

  // Layout: RSDP first (section 5.2.5.1: found by scanning 16-byte boundaries of 0xe0000-0xfffff),
  // then the XSDT and the tables it and the FADT point at, each 16-byte aligned.
  const uint64_t rsdp_addr = layout::kAcpiStart;
  const uint64_t xsdt_addr = alignUp(rsdp_addr + sizeof(Rsdp));
  constexpr size_t kXsdtEntries = 3;
  const uint64_t fadt_addr = alignUp(xsdt_addr + sizeof(TableHeader) + 8 * kXsdtEntries);
  const uint64_t dsdt_addr = alignUp(fadt_addr + sizeof(Fadt));
  const uint64_t madt_addr = alignUp(dsdt_addr + dsdt.size());
  const uint64_t mcfg_addr = alignUp(madt_addr + madt.size());
  const uint64_t end = mcfg_addr + mcfg.size();  // tables are KiBs: no overflow
  if (end > kAcpiEnd) {
    return makeError(Errc::OutOfRange, "ACPI tables end at {:#x}, past the BIOS area's end {:#x}",
                     end, kAcpiEnd);
  }
  const uint64_t entries[kXsdtEntries] = {fadt_addr, madt_addr, mcfg_addr};
  auto xsdt = buildXsdt(entries);
  auto fadt = buildFadt(dsdt_addr);
  auto rsdp = buildRsdp(xsdt_addr);

  EMBER_TRY(mem.fill(GuestAddress(layout::kAcpiStart), 0, kAcpiEnd - layout::kAcpiStart));
  EMBER_TRY(mem.write(GuestAddress(rsdp_addr), rsdp));
  EMBER_TRY(mem.write(GuestAddress(xsdt_addr), xsdt));
  EMBER_TRY(mem.write(GuestAddress(fadt_addr), fadt));
  EMBER_TRY(mem.write(GuestAddress(dsdt_addr), dsdt));
  EMBER_TRY(mem.write(GuestAddress(madt_addr), madt));
  EMBER_TRY(mem.write(GuestAddress(mcfg_addr), mcfg));
  return rsdp_addr;
}

}  // namespace ember::vmm
