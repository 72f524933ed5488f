// Descriptor-chain validation.
#include "virtio/DescriptorChain.h"

#include "virtio/VirtioSpec.h"

namespace ember::virtio {

DescriptorChain::DescriptorChain(const GuestMemory& mem, GuestAddress table, uint16_t queue_size,
                                 uint16_t head, bool indirect_allowed)
    : mem_(&mem),
      table_(table),
      table_size_(queue_size),
      queue_size_(queue_size),
      head_(head),
      index_(head),
      indirect_allowed_(indirect_allowed) {}

Result<std::optional<Descriptor>> DescriptorChain::next() {
  for (;;) {
    if (done_) {
      return std::optional<Descriptor>();
    }
    if (index_ >= table_size_) {
      done_ = true;
      return makeError(Errc::Guest, "descriptor index {} is outside a table of {}", index_,
                       table_size_);
    }
    if (followed_ >= table_size_) {
      done_ = true;
      return makeError(Errc::Guest,
                       "descriptor chain from head {} is longer than its table ({}): "
                       "a loop",
                       head_, table_size_);
    }
    if (total_ >= queue_size_) {
      done_ = true;
      return makeError(Errc::Guest,
                       "descriptor chain from head {} is longer than the queue size "
                       "{}",
                       head_, queue_size_);
    }
    ++followed_;
    ++total_;
    auto raw = mem_->readObj<RawDescriptor>(GuestAddress(table_.raw + 16ULL * index_));
    if (!raw) {
      done_ = true;
      return makeError(Errc::Guest, "descriptor table entry {} is outside RAM", index_);
    }
    const RawDescriptor d = *raw;  // copied once: the guest may change it behind us
    if (d.flags & ~desc::kKnownFlags) {
      done_ = true;
      return makeError(Errc::Guest, "descriptor {} has unknown flags {:#x}", index_, d.flags);
    }
    if (d.flags & desc::kIndirect) {
      if (!indirect_allowed_) {
        done_ = true;
        return makeError(Errc::Guest,
                         "indirect descriptor but VIRTIO_F_INDIRECT_DESC was not "
                         "negotiated");
      }
      if (in_indirect_) {
        done_ = true;
        return makeError(Errc::Guest, "indirect descriptor inside an indirect table");
      }
      if (d.flags & desc::kNext) {
        done_ = true;
        return makeError(Errc::Guest, "descriptor {} has both INDIRECT and NEXT", index_);
      }
      if (d.len == 0 || d.len % sizeof(RawDescriptor) != 0) {
        done_ = true;
        return makeError(Errc::Guest, "indirect table length {} is not a non-zero multiple of 16",
                         d.len);
      }
      if (!mem_->contains(GuestAddress(d.addr), d.len)) {
        done_ = true;
        return makeError(Errc::Guest, "indirect table {:#x}+{:#x} is outside RAM", d.addr, d.len);
      }
      // 2.7.5.3.1: the device follows the indirect table from its entry 0.
      in_indirect_ = true;
      table_ = GuestAddress(d.addr);
      table_size_ = d.len / sizeof(RawDescriptor);
      index_ = 0;
      followed_ = 0;
      --total_;  // the indirect descriptor itself carries no buffer
      continue;
    }
    bool writable = d.flags & desc::kWrite;
    if (!writable && seen_writable_) {
      done_ = true;
      return makeError(Errc::Guest, "device-readable descriptor after a device-writable one");
    }
    seen_writable_ |= writable;
    if (!mem_->contains(GuestAddress(d.addr), d.len)) {
      done_ = true;
      return makeError(Errc::Guest, "buffer {:#x}+{:#x} is outside RAM", d.addr, d.len);
    }
    if (d.flags & desc::kNext) {
      index_ = d.next;
    } else {
      done_ = true;
    }
    return std::optional<Descriptor>(Descriptor{d.addr, d.len, writable});
  }
}

}  // namespace ember::virtio
