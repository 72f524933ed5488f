// The CPUID table each vCPU sees: the host's KVM-supported leaves, with per-vCPU APIC IDs, a
// topology matching --cpus, and the hypervisor bit.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember::vmm {

std::vector<kvm_cpuid_entry2> buildCpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_id, uint32_t vcpu_count);

}  // namespace ember::vmm
