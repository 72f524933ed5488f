// The CPUID table each vCPU sees: the host's KVM-supported leaves, with per-vCPU APIC IDs, a
// topology matching --cpus, and the hypervisor bit.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember::vmm {

// `tsc_deadline`: KVM emulates the LAPIC TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER), which
// KVM_GET_SUPPORTED_CPUID does not report on every host (kvm-amd omits it).
std::vector<kvm_cpuid_entry2> buildCpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_id, uint32_t vcpu_count,
                                         bool tsc_deadline = false);

}  // namespace ember::vmm
