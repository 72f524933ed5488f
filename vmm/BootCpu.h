// Initial register state of the boot vCPU for each entry protocol.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "kvm/Vcpu.h"

namespace ember::vmm {

// PVH: 32-bit protected mode, paging off, flat 4 GiB CS/DS/SS, %ebx = start_info
// (Xen's "HVM direct boot ABI", docs/misc/pvh.pandoc).
Result<void> setPvhEntryState(kvm::Vcpu& vcpu, uint32_t entry, uint32_t start_info);

// 64-bit long mode with the first 4 GiB identity-mapped by 2 MiB pages (tables written to
// layout::kPageTables), a flat GDT at layout::kGdtAddress, and `rsi` set (Linux 64-bit boot
// protocol: %rsi = boot_params; our plain-ELF entry: %rsi = start_info as well).
Result<void> setLongModeEntryState(kvm::Vcpu& vcpu, const GuestMemory& mem, uint64_t entry,
                                   uint64_t rsi);

}  // namespace ember::vmm
