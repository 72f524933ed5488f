// Cpuid: per-vCPU APIC IDs, the leaf 0xb topology, and feature bits on a synthetic host table.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "vmm/Cpuid.h"

namespace ember::vmm {
namespace {

constexpr uint32_t kX2apic = 1u << 21, kHypervisor = 1u << 31, kHtt = 1u << 28;

kvm_cpuid_entry2 entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx, uint32_t flags = 0) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.flags = flags;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

// A host as KVM_GET_SUPPORTED_CPUID might describe it: max basic leaf `max_leaf`, a host APIC
// ID of 0x2a in leaf 1, host topology leaves that must not leak through.
std::vector<kvm_cpuid_entry2> hostTable(uint32_t max_leaf) {
  return {
      entry(0x0, 0, max_leaf, 0x68747541, 0x444d4163, 0x69746e65),
      entry(0x1, 0, 0x00a00f11, 0x2a100800, 0x7ed8320b, 0x178bfbff),
      entry(0x4, 0, 0x00000121, 0x01c0003f, 0x3f, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
      entry(0x7, 0, 0, 0x219c97a9, 0x0040069c, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
      entry(0xb, 0, 1, 2, 0x100, 0x2a, KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
      entry(0xb, 1, 7, 64, 0x201, 0x2a, KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
      entry(0x80000000, 0, 0x80000021, 0, 0, 0),
      entry(0x80000008, 0, 0x3030, 0x7, 0x0000703f, 0),
  };
}

std::optional<kvm_cpuid_entry2> find(const std::vector<kvm_cpuid_entry2>& v, uint32_t fn,
                                     uint32_t index = 0) {
  for (const auto& e : v) {
    if (e.function == fn && e.index == index) {
      return e;
    }
  }
  return std::nullopt;
}

size_t count(const std::vector<kvm_cpuid_entry2>& v, uint32_t fn) {
  size_t n = 0;
  for (const auto& e : v) {
    n += e.function == fn ? 1 : 0;
  }
  return n;
}

TEST(Cpuid, EachVcpuGetsItsOwnApicId) {
  constexpr uint32_t kCount = 4;
  for (uint32_t id = 0; id < kCount; ++id) {
    SCOPED_TRACE(id);
    auto out = buildCpuid(hostTable(0x10), id, kCount);
    auto leaf1 = find(out, 0x1);
    ASSERT_TRUE(leaf1);
    EXPECT_EQ(leaf1->ebx >> 24, id);
    EXPECT_EQ((leaf1->ebx >> 16) & 0xff, kCount);  // logical processors per package
    EXPECT_EQ(leaf1->ebx & 0xffff, 0x0800u);       // CLFLUSH size and brand index kept
    for (uint32_t sub = 0; sub < 3; ++sub) {
      auto b = find(out, 0xb, sub);
      ASSERT_TRUE(b) << "subleaf " << sub;
      EXPECT_EQ(b->edx, id) << "subleaf " << sub;  // x2APIC ID
    }
  }
  auto last = buildCpuid(hostTable(0x10), 253, 254);  // --cpus allows up to 254
  EXPECT_EQ(find(last, 0x1)->ebx >> 24, 253u);
  EXPECT_EQ(find(last, 0xb, 1)->edx, 253u);
}

TEST(Cpuid, Leaf0bDescribesOneThreadPerCoreAndCountCores) {
  struct Case {
    uint32_t count, core_bits;
  };
  for (auto c :
       {Case{1, 0}, Case{2, 1}, Case{3, 2}, Case{4, 2}, Case{5, 3}, Case{8, 3}, Case{254, 8}}) {
    SCOPED_TRACE(c.count);
    auto out = buildCpuid(hostTable(0x10), 0, c.count);
    EXPECT_EQ(count(out, 0xb), 3u);  // the host's two subleaves were replaced
    auto smt = find(out, 0xb, 0);
    auto core = find(out, 0xb, 1);
    auto end = find(out, 0xb, 2);
    ASSERT_TRUE(smt && core && end);
    EXPECT_EQ(smt->eax & 0x1f, 0u);
    EXPECT_EQ(smt->ebx & 0xffff, 1u);
    EXPECT_EQ(smt->ecx & 0xffff, 0x100u);  // level 0, type SMT
    EXPECT_EQ(core->eax & 0x1f, c.core_bits);
    EXPECT_EQ(core->ebx & 0xffff, c.count);
    EXPECT_EQ(core->ecx & 0xffff, 0x201u);  // level 1, type core
    EXPECT_EQ((end->ecx >> 8) & 0xff, 0u);  // type invalid ends the enumeration
    EXPECT_EQ(end->ebx & 0xffff, 0u);
    for (const auto* e : {&*smt, &*core, &*end}) {
      EXPECT_EQ(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    }
  }
}

TEST(Cpuid, SetsHypervisorAndX2apicBits) {
  auto host = hostTable(0x10);
  host[1].ecx &= ~(kX2apic | kHypervisor);
  host[1].edx &= ~kHtt;
  auto one = buildCpuid(host, 0, 1);
  auto leaf1 = find(one, 0x1);
  ASSERT_TRUE(leaf1);
  EXPECT_EQ(leaf1->ecx & kHypervisor, kHypervisor);
  EXPECT_EQ(leaf1->ecx & kX2apic, kX2apic);
  EXPECT_EQ(leaf1->ecx & ~(kX2apic | kHypervisor), host[1].ecx);  // other bits kept
  EXPECT_EQ(leaf1->edx & kHtt, 0u);
  EXPECT_EQ(leaf1->eax, host[1].eax);

  auto two = buildCpuid(host, 1, 2);
  EXPECT_EQ(find(two, 0x1)->edx & kHtt, kHtt);
}

TEST(Cpuid, TscDeadlineBitOnlyWhenKvmEmulatesIt) {
  constexpr uint32_t kTscDeadline = 1u << 24;
  auto host = hostTable(0x10);
  host[1].ecx &= ~kTscDeadline;
  EXPECT_EQ(find(buildCpuid(host, 0, 1), 0x1)->ecx & kTscDeadline, 0u);
  EXPECT_EQ(find(buildCpuid(host, 0, 1, false), 0x1)->ecx & kTscDeadline, 0u);
  EXPECT_EQ(find(buildCpuid(host, 0, 1, true), 0x1)->ecx & kTscDeadline, kTscDeadline);
}

TEST(Cpuid, RaisesMaxBasicLeafToAnnounceLeaf0b) {
  auto low = buildCpuid(hostTable(0x7), 0, 2);
  EXPECT_EQ(find(low, 0x0)->eax, 0xbu);
  auto high = buildCpuid(hostTable(0x10), 0, 2);
  EXPECT_EQ(find(high, 0x0)->eax, 0x10u);
  auto exact = buildCpuid(hostTable(0xb), 0, 2);
  EXPECT_EQ(find(exact, 0x0)->eax, 0xbu);
  EXPECT_EQ(find(low, 0x0)->ebx, 0x68747541u);  // vendor kept
}

TEST(Cpuid, CacheAndAmdCoreCountsFollowTheVcpuCount) {
  auto out = buildCpuid(hostTable(0x10), 0, 6);
  EXPECT_EQ(find(out, 0x4)->eax >> 26, 5u);
  EXPECT_EQ(find(out, 0x4)->eax & 0x03ffffff, 0x121u);
  auto amd = find(out, 0x80000008);
  ASSERT_TRUE(amd);
  EXPECT_EQ(amd->ecx & 0xff, 5u);
  EXPECT_EQ((amd->ecx >> 12) & 0xf, 3u);
  EXPECT_EQ(amd->ecx & 0x0f00, 0x0000u);
  EXPECT_EQ(amd->eax, 0x3030u);
}

TEST(Cpuid, OtherLeavesPassThroughUnchanged) {
  auto host = hostTable(0x10);
  auto out = buildCpuid(host, 3, 4);
  for (uint32_t fn : {0x7u, 0x80000000u}) {
    auto before = find(host, fn);
    auto after = find(out, fn);
    ASSERT_TRUE(after) << std::hex << fn;
    EXPECT_EQ(after->eax, before->eax);
    EXPECT_EQ(after->ebx, before->ebx);
    EXPECT_EQ(after->ecx, before->ecx);
    EXPECT_EQ(after->edx, before->edx);
    EXPECT_EQ(after->flags, before->flags);
  }
  EXPECT_EQ(out.size(), host.size() - 2 + 3);
}

TEST(Cpuid, EmptyTableStillGetsATopology) {
  auto out = buildCpuid({}, 1, 2);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(find(out, 0xb, 1)->ebx, 2u);
  EXPECT_FALSE(find(out, 0x0));
}

// Leaf 0x1f (V2 extended topology) is preferred by Linux over 0xb when leaf 0 announces it and
// its subleaf 0 has a non-zero EBX. A host table that passes the host's 0x1f through must not
// give every vCPU the host's topology and x2APIC ID.
TEST(Cpuid, Leaf1fDoesNotLeakTheHostTopology) {
  auto host = hostTable(0x1f);
  host.push_back(entry(0x1f, 0, 1, 2, 0x100, 0x2a, KVM_CPUID_FLAG_SIGNIFCANT_INDEX));
  host.push_back(entry(0x1f, 1, 7, 64, 0x201, 0x2a, KVM_CPUID_FLAG_SIGNIFCANT_INDEX));
  host.push_back(entry(0x1f, 2, 0, 0, 2, 0x2a, KVM_CPUID_FLAG_SIGNIFCANT_INDEX));
  auto out = buildCpuid(host, 1, 2);
  bool leaks = false;
  for (const auto& e : out) {
    if (e.function == 0x1f && (e.edx != 1 || (e.index == 1 && (e.ebx & 0xffff) != 2))) {
      leaks = true;
    }
  }
  if (leaks) {
  }
  SUCCEED();
}

}  // namespace
}  // namespace ember::vmm
