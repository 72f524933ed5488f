// Layout-exact helpers for the KVM ioctls whose structures end in a flexible array.
//
// Linux 6.1's uapi headers declare those arrays with __DECLARE_FLEX_ARRAY, which in C++ expands to
// an empty struct (size 1) in front of the array: sizeof(struct kvm_cpuid2) becomes 12 instead of
// 8, so both the ioctl numbers (which encode the size) and the array offset are wrong when the
// headers are used from C++. These definitions restore the C ABI: an 8-byte header followed by
// the entries.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace ember::kvm::abi {

struct FlexHeader {
  uint32_t count;  // nent / nmsrs / nr
  uint32_t flags;  // padding / pad / flags
};
static_assert(sizeof(FlexHeader) == 8);

constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, FlexHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, FlexHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, FlexHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, FlexHeader);
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, FlexHeader);

// struct kvm_msr_list: a 4-byte count, then the indices (KVM_GET_MSR_INDEX_LIST, system fd).
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, uint32_t);

// struct kvm_xsave is 4096 bytes in C (region[1024], then the flexible `extra` KVM_GET_XSAVE2
// may fill); KVM_GET_XSAVE and KVM_SET_XSAVE move exactly those 4096.
struct Xsave {
  uint32_t region[1024];
};
static_assert(sizeof(Xsave) == 4096);
constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);

// A buffer laid out as the C structure: FlexHeader, then `count` entries of type Entry.
template <typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t capacity)
      : words_((sizeof(FlexHeader) + capacity * sizeof(Entry) + 7) / 8), capacity_(capacity) {
    header().count = static_cast<uint32_t>(capacity);
  }
  FlexBuffer(std::span<const Entry> entries) : FlexBuffer(entries.size()) {  // NOLINT
    std::memcpy(bytes() + sizeof(FlexHeader), entries.data(), entries.size_bytes());
  }

  void* data() { return words_.data(); }
  FlexHeader& header() { return *reinterpret_cast<FlexHeader*>(words_.data()); }  // offset 0
  std::vector<Entry> entries() {
    std::vector<Entry> out(std::min<size_t>(header().count, capacity_));
    std::memcpy(out.data(), bytes() + sizeof(FlexHeader), out.size() * sizeof(Entry));
    return out;
  }

 private:
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(words_.data()); }  // byte view of buffer
  std::vector<uint64_t> words_;
  size_t capacity_;
};

}  // namespace ember::kvm::abi
