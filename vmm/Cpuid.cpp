// CPUID adjustments (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3 appendix E).
#include "vmm/Cpuid.h"

#include <bit>
#include <cstddef>

namespace ember::vmm {

namespace {
constexpr uint32_t kLeaf1EcxX2apic = 1u << 21;
constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EcxTscDeadline = 1u << 24;
constexpr uint32_t kLeaf1EdxHtt = 1u << 28;

kvm_cpuid_entry2* findEntry(std::vector<kvm_cpuid_entry2>& v, uint32_t fn, uint32_t index) {
  for (auto& e : v) {
    if (e.function == fn && e.index == index) {
      return &e;
    }
  }
  return nullptr;
}
}  // namespace

std::vector<kvm_cpuid_entry2> buildCpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_id, uint32_t vcpu_count, bool tsc_deadline) {
  std::vector<kvm_cpuid_entry2> out;
  // Leaves 0xb and 0x1f (the V2 extended topology leaf) are rebuilt below; drop whatever the
  // host reported for them, so that no host topology leaks into the guest.
  for (const auto& e : supported) {
    if (e.function != 0xb && e.function != 0x1f) {
      out.push_back(e);
    }
  }
  // Each vCPU is one core of one package; the core field width in the APIC ID is
  // ceil(log2(count)).
  uint32_t core_bits = vcpu_count <= 1 ? 0 : std::bit_width(vcpu_count - 1);

  for (auto& e : out) {
    switch (e.function) {
      case 0x1:
        e.ebx =
            (e.ebx & 0x0000ffff) | (std::min<uint32_t>(vcpu_count, 255) << 16) | (vcpu_id << 24);
        e.ecx |= kLeaf1EcxHypervisor | kLeaf1EcxX2apic;
        if (tsc_deadline) {
          e.ecx |= kLeaf1EcxTscDeadline;
        }
        if (vcpu_count > 1) {
          e.edx |= kLeaf1EdxHtt;
        }
        break;
      case 0x4:
        // Deterministic cache parameters: EAX[31:26] = cores per package - 1.
        e.eax = (e.eax & 0x03ffffff) | ((vcpu_count - 1) << 26);
        break;
      case 0x80000008:
        // AMD: ECX[7:0] = number of cores - 1, ECX[15:12] = APIC ID core bits.
        e.ecx = (e.ecx & ~0xf0ffu) | (vcpu_count - 1) | (core_bits << 12);
        break;
      default:
        break;
    }
  }
  // Leaf 0xb: x2APIC topology. Subleaf 0 = SMT level (1 thread per core), subleaf 1 = core level.
  auto add0b = [&](uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx) {
    kvm_cpuid_entry2 e{};
    e.function = 0xb;
    e.index = index;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = vcpu_id;
    out.push_back(e);
  };
  add0b(0, 0, 1, (1u << 8) | 0);
  add0b(1, core_bits, vcpu_count, (2u << 8) | 1);
  add0b(2, 0, 0, 2);
  // Leaf 0x1f, when the host has one, says the same as 0xb (SMT and core levels only).
  bool host_has_1f = false;
  for (const auto& e : supported) host_has_1f |= e.function == 0x1f;
  if (host_has_1f) {
    std::size_t n = out.size();
    for (std::size_t i = n - 3; i < n; ++i) {
      kvm_cpuid_entry2 e = out[i];
      e.function = 0x1f;
      out.push_back(e);
    }
  }
  // Make sure leaf 0 announces leaf 0xb.
  if (auto* leaf0 = findEntry(out, 0, 0); leaf0 != nullptr && leaf0->eax < 0xb) {
    leaf0->eax = 0xb;
  }
  return out;
}

}  // namespace ember::vmm
