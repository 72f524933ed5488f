// The KVM system fd (/dev/kvm): API version, capabilities and host-wide queries.
#pragma once

#include <linux/kvm.h>

#include <string>
#include <vector>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::kvm {

class KvmSystem {
 public:
  // Opens the KVM device (normally /dev/kvm), checks the API version and every capability Ember
  // depends on. The error names the first missing one.
  static Result<KvmSystem> open(const std::string& path);

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  int checkExtension(long cap) const;
  int vcpuMmapSize() const { return vcpu_mmap_size_; }
  int recommendedVcpus() const { return recommended_vcpus_; }
  int maxVcpus() const { return max_vcpus_; }
  // KVM_GET_SUPPORTED_CPUID: what this host can offer a guest.
  const std::vector<kvm_cpuid_entry2>& supportedCpuid() const { return supported_cpuid_; }
  // KVM_GET_MSR_INDEX_LIST: the MSRs a snapshot saves (kvm/VcpuState.h).
  Result<std::vector<uint32_t>> msrIndexList() const;

 private:
  KvmSystem() = default;
  UniqueFd fd_;
  std::string path_;
  int vcpu_mmap_size_ = 0;
  int recommended_vcpus_ = 0;
  int max_vcpus_ = 0;
  std::vector<kvm_cpuid_entry2> supported_cpuid_;
};

}  // namespace ember::kvm
