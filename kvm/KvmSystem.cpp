// Opening /dev/kvm and checking what it can do.
#include "kvm/KvmSystem.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "kvm/KvmAbi.h"

namespace ember::kvm {

namespace {

struct RequiredCap {
  long cap;
  const char* name;
  const char* why;
};

constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel IOAPIC and LAPIC"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel PIT"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 VM set-up"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtqueue kicks"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "MSI-X routing"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI", "MSI delivery"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID"},
};

}  // namespace

Result<KvmSystem> KvmSystem::open(const std::string& path) {
  KvmSystem sys;
  sys.path_ = path;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return Error{err == ENOENT ? Errc::NotFound : Errc::Io,
                 fmt::format("cannot open KVM device {}: {} (is the kvm module loaded, and may "
                             "this user open it?)",
                             path, std::strerror(err)),
                 err};
  }
  sys.fd_.reset(fd);
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return makeError(Errc::Unsupported, "{} is not a KVM device with API version {} (got {})", path,
                     KVM_API_VERSION, version);
  }
  for (const auto& c : kRequiredCaps) {
    if (sys.checkExtension(c.cap) <= 0) {
      return makeError(Errc::Unsupported, "KVM at {} lacks {}, which Ember needs for {}", path,
                       c.name, c.why);
    }
  }
  sys.vcpu_mmap_size_ = ::ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (sys.vcpu_mmap_size_ < static_cast<int>(sizeof(kvm_run))) {
    return Error::fromErrno(Errc::Kvm, "KVM_GET_VCPU_MMAP_SIZE");
  }
  sys.recommended_vcpus_ = std::max(1, sys.checkExtension(KVM_CAP_NR_VCPUS));
  sys.max_vcpus_ = std::max(sys.recommended_vcpus_, sys.checkExtension(KVM_CAP_MAX_VCPUS));

  // KVM_GET_SUPPORTED_CPUID fails with E2BIG until the buffer is large enough.
  for (size_t n = 64; n <= 4096; n *= 2) {
    abi::FlexBuffer<kvm_cpuid_entry2> buf(n);
    if (::ioctl(fd, abi::kGetSupportedCpuid, buf.data()) == 0) {
      sys.supported_cpuid_ = buf.entries();
      return sys;
    }
    if (errno != E2BIG) {
      return Error::fromErrno(Errc::Kvm, "KVM_GET_SUPPORTED_CPUID");
    }
  }
  return makeError(Errc::Kvm, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

int KvmSystem::checkExtension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

Result<std::vector<uint32_t>> KvmSystem::msrIndexList() const {
  // First the count (the call fails with E2BIG and says how many), then the list.
  uint32_t count = 0;
  if (::ioctl(fd_.get(), abi::kGetMsrIndexList, &count) == 0) return std::vector<uint32_t>();
  if (errno != E2BIG) return Error::fromErrno(Errc::Kvm, "KVM_GET_MSR_INDEX_LIST");
  std::vector<uint32_t> buf(1 + count);
  buf[0] = count;
  if (::ioctl(fd_.get(), abi::kGetMsrIndexList, buf.data()) < 0) {
    return Error::fromErrno(Errc::Kvm, "KVM_GET_MSR_INDEX_LIST");
  }
  return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + std::min(buf[0], count));
}

}  // namespace ember::kvm
