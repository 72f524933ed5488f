// Split virtqueue, driver side (virtio 1.2 section 2.7). Ring indices are 16-bit values that
// wrap; entries are taken modulo the queue size. On x86 stores are not reordered with other
// stores nor loads with other loads, so the write barrier before publishing avail->idx and the
// read barrier after observing used->idx are compiler barriers; the barrier between publishing
// and reading used->flags (a store then a load) is a real fence (2.7.13.3, 2.7.13.4).
#include "virtqueue.h"

namespace guest {

namespace {
size_t pages_for(size_t bytes) {
  return (bytes + 4095) / 4096;
}
}  // namespace

bool Virtqueue::init(uint16_t size, bool legacy_layout, uint16_t indirect_max, char* why,
                     size_t n) {
  if (size == 0 || size > kMaxSize || (size & (size - 1)) != 0) {
    return snprintf(why, n, "queue size %u unusable (not a power of 2 up to %u)", size, kMaxSize),
           false;
  }
  size_t desc_bytes = 16ULL * size, avail_bytes = 6 + 2ULL * size, used_bytes = 6 + 8ULL * size;
  size_t pages = legacy_layout
                     ? pages_for(desc_bytes + avail_bytes) + pages_for(used_bytes)
                     : pages_for(used_bytes) + pages_for(desc_bytes) + pages_for(avail_bytes);
  if (mem_ == nullptr || mem_pages_ < pages) {
    mem_ = static_cast<uint8_t*>(alloc_pages(pages));
    if (mem_ == nullptr) return snprintf(why, n, "out of pages for a %u-entry queue", size), false;
    mem_pages_ = pages;
  } else {
    memset(mem_, 0, mem_pages_ * 4096);
  }
  if (legacy_layout) {
    desc_ = reinterpret_cast<Desc*>(mem_);
    avail_ = reinterpret_cast<Avail*>(mem_ + desc_bytes);
    used_ = reinterpret_cast<Used*>(mem_ + pages_for(desc_bytes + avail_bytes) * 4096);
  } else {
    used_ = reinterpret_cast<Used*>(mem_);
    desc_ = reinterpret_cast<Desc*>(mem_ + pages_for(used_bytes) * 4096);
    avail_ =
        reinterpret_cast<Avail*>(reinterpret_cast<uint8_t*>(desc_) + pages_for(desc_bytes) * 4096);
  }
  indirect_max_ = indirect_max;
  if (indirect_max != 0) {
    size_t ipages = pages_for(16ULL * indirect_max * size);
    if (ind_mem_ == nullptr || ind_pages_ < ipages) {
      ind_mem_ = static_cast<uint8_t*>(alloc_pages(ipages));
      if (ind_mem_ == nullptr) return snprintf(why, n, "out of pages for indirect tables"), false;
      ind_pages_ = ipages;
    }
    indirect_ = reinterpret_cast<Desc*>(ind_mem_);
  }
  size_ = size;
  for (uint16_t i = 0; i < size; ++i) {
    desc_[i].next = static_cast<uint16_t>(i + 1);  // the free list
    chain_len_[i] = 0;
  }
  free_head_ = 0;
  num_free_ = size;
  avail_idx_ = 0;
  last_used_ = 0;
  in_flight_ = 0;
  return true;
}

int Virtqueue::add(const VqSeg* segs, uint16_t n, bool indirect) {
  if (n == 0) return -1;
  if (indirect && (n > indirect_max_ || indirect_ == nullptr)) return -1;
  uint16_t need = indirect ? 1 : n;
  if (need > num_free_) return -1;
  uint16_t head = free_head_;
  volatile Desc* d = desc_;
  if (indirect) {
    // 2.7.5.3.1: the table holds an ordinary chain, NEXT links by table index; the ring entry
    // has only INDIRECT set and the table's length in bytes.
    volatile Desc* t = indirect_ + static_cast<size_t>(head) * indirect_max_;
    for (uint16_t i = 0; i < n; ++i) {
      t[i].addr = segs[i].addr;
      t[i].len = segs[i].len;
      t[i].flags = static_cast<uint16_t>((segs[i].device_writable ? kDescWrite : 0) |
                                         (i + 1 < n ? kDescNext : 0));
      t[i].next = static_cast<uint16_t>(i + 1 < n ? i + 1 : 0);
    }
    free_head_ = d[head].next;
    d[head].addr = reinterpret_cast<uint64_t>(const_cast<Desc*>(t));
    d[head].len = 16u * n;
    d[head].flags = kDescIndirect;
  } else {
    // The chain follows the free list; each descriptor's `next` already links to the one after.
    uint16_t idx = head;
    for (uint16_t i = 0; i < n; ++i) {
      d[idx].addr = segs[i].addr;
      d[idx].len = segs[i].len;
      d[idx].flags = static_cast<uint16_t>((segs[i].device_writable ? kDescWrite : 0) |
                                           (i + 1 < n ? kDescNext : 0));
      idx = d[idx].next;
    }
    free_head_ = idx;
  }
  num_free_ = static_cast<uint16_t>(num_free_ - need);
  chain_len_[head] = need;
  ++in_flight_;
  volatile Avail* a = avail_;
  a->ring[avail_idx_ & (size_ - 1)] = head;
  barrier();  // the ring entry before the index (2.7.13.3: write barrier)
  avail_idx_ = static_cast<uint16_t>(avail_idx_ + 1);
  a->idx = avail_idx_;
  return head;
}

bool Virtqueue::kick_needed() const {
  mb();  // avail->idx visible before used->flags is read (2.7.13.4)
  return !(static_cast<volatile Used*>(used_)->flags & kUsedNoNotify);
}

uint16_t Virtqueue::used_index() const {
  return static_cast<volatile Used*>(used_)->idx;
}

int Virtqueue::pop(uint16_t* head, uint32_t* len, char* why, size_t n) {
  volatile Used* u = used_;
  uint16_t idx = u->idx;
  if (idx == last_used_) return 0;
  barrier();  // read barrier: the element after the index
  if (static_cast<uint16_t>(idx - last_used_) > in_flight_) {
    return snprintf(why, n, "used idx %u is %u ahead with %u in flight", idx,
                    static_cast<uint16_t>(idx - last_used_), in_flight_),
           -1;
  }
  uint32_t id = u->ring[last_used_ & (size_ - 1)].id;
  uint32_t l = u->ring[last_used_ & (size_ - 1)].len;
  if (id >= size_ || chain_len_[id] == 0) {
    return snprintf(why, n, "used element %u names descriptor %u, not in flight", last_used_, id),
           -1;
  }
  last_used_ = static_cast<uint16_t>(last_used_ + 1);
  // Return the chain to the free list: its last descriptor links to the old free head.
  volatile Desc* d = desc_;
  uint16_t last = static_cast<uint16_t>(id);
  for (uint16_t k = 1; k < chain_len_[id]; ++k) last = d[last].next;
  d[last].next = free_head_;
  free_head_ = static_cast<uint16_t>(id);
  num_free_ = static_cast<uint16_t>(num_free_ + chain_len_[id]);
  chain_len_[id] = 0;
  --in_flight_;
  *head = static_cast<uint16_t>(id);
  *len = l;
  return 1;
}

}  // namespace guest
