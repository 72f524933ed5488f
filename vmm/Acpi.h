// The ACPI tables that describe Ember's machine to the guest (ACPI 6.5, chapter 5): RSDP, XSDT,
// a hardware-reduced FADT, the DSDT, the MADT and the MCFG.
//
// The platform is "hardware-reduced ACPI" (section 4.1): no PM1 blocks, no SCI, no GPEs; power
// off and reset go through the FADT's sleep control and reset registers, which
// devices::AcpiPm implements. The DSDT names the PCI host bridge (its windows and its legacy
// INTx routing) and COM1. The tables are written to the legacy BIOS area at layout::kAcpiStart
// (0xe0000), where a guest that is not given the RSDP address finds it by scanning; PVH
// (start_info.rsdp_paddr) and bzImage (boot_params.acpi_rsdp_addr) boots pass the address too.
// The table layouts are written from the specification, each offset pinned by a static_assert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"

namespace ember::vmm {

struct AcpiConfig {
  uint32_t cpus = 1;             // one Processor Local APIC entry each, APIC ID = index
  uint64_t pci_mmio64_base = 0;  // the 64-bit PCI MMIO window; size 0 leaves it out
  uint64_t pci_mmio64_size = 0;
};

// Writes every table to [layout::kAcpiStart, 1 MiB) with valid checksums; returns the RSDP's
// address.
Result<uint64_t> writeAcpiTables(const GuestMemory& mem, const AcpiConfig& config);

namespace acpi {

constexpr uint32_t kMaxCpus = 254;  // 8-bit APIC IDs (0xff is broadcast); the I/O APIC takes
                                    // the ID after the last CPU
constexpr uint32_t kIoapicGsiBase = 0;
// The legacy PCI INTx routing the DSDT's _PRT advertises: INTA-INTD (pin 0-3) of device
// `slot` (1-31) go to I/O APIC input 16 + ((slot + pin) mod 8). A PCI device model raising INTx
// must use the same rule.
constexpr uint32_t kPciFirstIntxGsi = 16;
constexpr uint32_t kPciIntxGsiCount = 8;
constexpr uint32_t pciIntxGsi(uint32_t slot, uint32_t pin) {
  return kPciFirstIntxGsi + (slot + pin) % kPciIntxGsiCount;
}
constexpr uint32_t kPrtFirstSlot = 1, kPrtLastSlot = 31;
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint8_t kCom1Irq = 4;

// Section 5.2.6 System Description Table Header.
struct __attribute__((packed)) TableHeader {
  char signature[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;  // the whole table sums to 0
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};
static_assert(sizeof(TableHeader) == 36);
static_assert(offsetof(TableHeader, checksum) == 9);
static_assert(offsetof(TableHeader, oem_id) == 10);
static_assert(offsetof(TableHeader, oem_table_id) == 16);
static_assert(offsetof(TableHeader, creator_id) == 28);

// Section 5.2.5.3 Root System Description Pointer, revision 2.
struct __attribute__((packed)) Rsdp {
  char signature[8];  // "RSD PTR "
  uint8_t checksum;   // the first 20 bytes sum to 0
  char oem_id[6];
  uint8_t revision;  // 2
  uint32_t rsdt_address;
  uint32_t length;  // 36
  uint64_t xsdt_address;
  uint8_t extended_checksum;  // all 36 bytes sum to 0
  uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);
static_assert(offsetof(Rsdp, revision) == 15);
static_assert(offsetof(Rsdp, rsdt_address) == 16);
static_assert(offsetof(Rsdp, length) == 20);
static_assert(offsetof(Rsdp, xsdt_address) == 24);
static_assert(offsetof(Rsdp, extended_checksum) == 32);

// Section 5.2.3.2 Generic Address Structure.
struct __attribute__((packed)) GenericAddress {
  uint8_t space_id;  // 1: system I/O
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;  // 1: byte access
  uint64_t address;
};
static_assert(sizeof(GenericAddress) == 12);

// Section 5.2.9 Fixed ACPI Description Table, revision 6 (table 5.9).
struct __attribute__((packed)) Fadt {
  TableHeader header;                // "FACP"
  uint32_t firmware_ctrl;            // 36
  uint32_t dsdt;                     // 40
  uint8_t reserved0;                 // 44
  uint8_t preferred_pm_profile;      // 45
  uint16_t sci_int;                  // 46
  uint32_t smi_cmd;                  // 48
  uint8_t acpi_enable;               // 52
  uint8_t acpi_disable;              // 53
  uint8_t s4bios_req;                // 54
  uint8_t pstate_cnt;                // 55
  uint32_t pm1a_evt_blk;             // 56
  uint32_t pm1b_evt_blk;             // 60
  uint32_t pm1a_cnt_blk;             // 64
  uint32_t pm1b_cnt_blk;             // 68
  uint32_t pm2_cnt_blk;              // 72
  uint32_t pm_tmr_blk;               // 76
  uint32_t gpe0_blk;                 // 80
  uint32_t gpe1_blk;                 // 84
  uint8_t pm1_evt_len;               // 88
  uint8_t pm1_cnt_len;               // 89
  uint8_t pm2_cnt_len;               // 90
  uint8_t pm_tmr_len;                // 91
  uint8_t gpe0_blk_len;              // 92
  uint8_t gpe1_blk_len;              // 93
  uint8_t gpe1_base;                 // 94
  uint8_t cst_cnt;                   // 95
  uint16_t p_lvl2_lat;               // 96
  uint16_t p_lvl3_lat;               // 98
  uint16_t flush_size;               // 100
  uint16_t flush_stride;             // 102
  uint8_t duty_offset;               // 104
  uint8_t duty_width;                // 105
  uint8_t day_alrm;                  // 106
  uint8_t mon_alrm;                  // 107
  uint8_t century;                   // 108
  uint16_t iapc_boot_arch;           // 109
  uint8_t reserved1;                 // 111
  uint32_t flags;                    // 112
  GenericAddress reset_reg;          // 116
  uint8_t reset_value;               // 128
  uint16_t arm_boot_arch;            // 129
  uint8_t minor_version;             // 131
  uint64_t x_firmware_ctrl;          // 132
  uint64_t x_dsdt;                   // 140
  GenericAddress x_pm1a_evt_blk;     // 148
  GenericAddress x_pm1b_evt_blk;     // 160
  GenericAddress x_pm1a_cnt_blk;     // 172
  GenericAddress x_pm1b_cnt_blk;     // 184
  GenericAddress x_pm2_cnt_blk;      // 196
  GenericAddress x_pm_tmr_blk;       // 208
  GenericAddress x_gpe0_blk;         // 220
  GenericAddress x_gpe1_blk;         // 232
  GenericAddress sleep_control_reg;  // 244
  GenericAddress sleep_status_reg;   // 256
  uint64_t hypervisor_vendor_id;     // 268
};
static_assert(offsetof(Fadt, dsdt) == 40);
static_assert(offsetof(Fadt, sci_int) == 46);
static_assert(offsetof(Fadt, pm1a_evt_blk) == 56);
static_assert(offsetof(Fadt, pm1_evt_len) == 88);
static_assert(offsetof(Fadt, iapc_boot_arch) == 109);
static_assert(offsetof(Fadt, flags) == 112);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, reset_value) == 128);
static_assert(offsetof(Fadt, minor_version) == 131);
static_assert(offsetof(Fadt, x_dsdt) == 140);
static_assert(offsetof(Fadt, x_pm1a_evt_blk) == 148);
static_assert(offsetof(Fadt, sleep_control_reg) == 244);
static_assert(offsetof(Fadt, sleep_status_reg) == 256);
static_assert(offsetof(Fadt, hypervisor_vendor_id) == 268);
static_assert(sizeof(Fadt) == 276);

// Section 5.2.9 (table 5.10) fixed feature flags, and section 5.2.9.3 (table 5.11) IA-PC boot
// architecture flags.
constexpr uint32_t kFadtPwrButton = 1u << 4;       // no fixed-feature power button
constexpr uint32_t kFadtSlpButton = 1u << 5;       // no fixed-feature sleep button
constexpr uint32_t kFadtResetRegSup = 1u << 10;    // RESET_REG is supported
constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;  // hardware-reduced ACPI
constexpr uint16_t kBootArch8042 = 1u << 1;        // an 8042 (i8042) is present
constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;
constexpr uint16_t kBootArchCmosRtcNotPresent = 1u << 5;

// Section 5.2.12 MADT: the header fields after the table header, and the entries used.
struct __attribute__((packed)) MadtFixed {
  uint32_t local_apic_address;
  uint32_t flags;  // bit 0 PCAT_COMPAT
};
struct __attribute__((packed)) MadtLocalApic {  // 5.2.12.2, type 0
  uint8_t type, length;
  uint8_t processor_uid;
  uint8_t apic_id;
  uint32_t flags;  // bit 0 Enabled
};
struct __attribute__((packed)) MadtIoApic {  // 5.2.12.3, type 1
  uint8_t type, length;
  uint8_t ioapic_id;
  uint8_t reserved;
  uint32_t address;
  uint32_t gsi_base;
};
struct __attribute__((packed)) MadtInterruptOverride {  // 5.2.12.5, type 2
  uint8_t type, length;
  uint8_t bus;  // 0: ISA
  uint8_t source;
  uint32_t gsi;
  uint16_t flags;  // MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2 (0: bus default)
};
struct __attribute__((packed)) MadtLocalApicNmi {  // 5.2.12.7, type 4
  uint8_t type, length;
  uint8_t processor_uid;  // 0xff: all processors
  uint16_t flags;
  uint8_t lint;
};
static_assert(sizeof(MadtLocalApic) == 8 && sizeof(MadtIoApic) == 12);
static_assert(sizeof(MadtInterruptOverride) == 10 && sizeof(MadtLocalApicNmi) == 6);
static_assert(offsetof(MadtIoApic, address) == 4 && offsetof(MadtInterruptOverride, gsi) == 4);
constexpr uint32_t kMadtPcatCompat = 1;
constexpr uint32_t kMadtLocalApicEnabled = 1;

// PCI Firmware Specification 3.2, section 4.1.2: MCFG allocation entry (after 8 reserved bytes).
struct __attribute__((packed)) McfgAllocation {
  uint64_t base_address;
  uint16_t segment;
  uint8_t start_bus;
  uint8_t end_bus;
  uint32_t reserved;
};
static_assert(sizeof(McfgAllocation) == 16);

// Table builders (complete tables, header and checksum included), exposed for tests.
Result<std::vector<uint8_t>> buildDsdt(const AcpiConfig& config);
Result<std::vector<uint8_t>> buildMadt(const AcpiConfig& config);
std::vector<uint8_t> buildMcfg();
std::vector<uint8_t> buildFadt(uint64_t dsdt_address);
std::vector<uint8_t> buildXsdt(std::span<const uint64_t> tables);
std::vector<uint8_t> buildRsdp(uint64_t xsdt_address);

// The 8-bit sum of `bytes` (a valid table sums to 0).
uint8_t byteSum(std::span<const uint8_t> bytes);

}  // namespace acpi

}  // namespace ember::vmm
