// Fuzzes the split-virtqueue device side: arbitrary ring and descriptor contents in guest memory
// walked by SplitQueue::pop, DescriptorChain and collectChain, and returned with pushUsed.
// Properties: no crash, no access outside guest RAM (ASan), bounded work (no hang on loops).
#include "FuzzInput.h"
#include "kvm/GuestMemory.h"
#include "virtio/QueueProcessing.h"
#include "virtio/SplitQueue.h"

using namespace ember;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  // Two 64 KiB regions with a gap between them, so that buffers can straddle or fall outside.
  static GuestMemory* mem = [] {
    GuestRegionSpec specs[] = {{GuestAddress(0), 0x10000}, {GuestAddress(0x20000), 0x10000}};
    return new GuestMemory(std::move(GuestMemory::create(specs)).value());
  }();
  for (const auto& r : mem->regions()) std::memset(r.mapping.data(), 0, r.size);

  uint16_t size_bits = in.take<uint8_t>() % 9;  // queue sizes 1..256
  virtio::QueueGeometry g;
  g.size = static_cast<uint16_t>(1u << size_bits);
  g.desc = 0x1000;
  g.avail = 0x3000;
  g.used = 0x4000;
  bool event_idx = in.take<uint8_t>() & 1;
  bool indirect = in.take<uint8_t>() & 1;
  // Fill the rings and a data area with fuzzer bytes.
  auto desc = in.takeBytes(16u * g.size);
  (void)mem->write(GuestAddress(g.desc), desc);
  auto avail = in.takeBytes(6u + 2u * g.size);
  (void)mem->write(GuestAddress(g.avail), avail);
  auto extra = in.takeBytes(0x8000);
  (void)mem->write(GuestAddress(0x8000), extra);

  auto q = virtio::SplitQueue::activate(*mem, g, 256, event_idx, indirect);
  if (!q) return 0;
  for (int i = 0; i < 512; ++i) {
    auto chain = q->pop();
    if (!chain || !*chain) break;
    auto bufs = virtio::collectChain(**chain);
    uint32_t len = bufs ? static_cast<uint32_t>(bufs->writableBytes()) : 0;
    if (!q->pushUsed((*chain)->head(), len)) break;
    (void)q->shouldInterrupt();
    if (i % 7 == 0) (void)q->armNotification();
  }
  return 0;
}
