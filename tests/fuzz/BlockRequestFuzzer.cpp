// Fuzzes virtio-blk request parsing: arbitrary chain shapes (readable/writable segments at
// arbitrary addresses) and header bytes. Properties: no crash, no out-of-bounds access, and any
// accepted I/O lies within the disk's capacity.
#include <cstdlib>

#include "FuzzInput.h"
#include "devices/BlockRequest.h"
#include "kvm/GuestMemory.h"

using namespace ember;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  static GuestMemory* mem = [] {
    GuestRegionSpec specs[] = {{GuestAddress(0), 0x10000}, {GuestAddress(0x20000), 0x10000}};
    return new GuestMemory(std::move(GuestMemory::create(specs)).value());
  }();
  virtio::ChainBuffers chain;
  chain.head = in.take<uint16_t>();
  int readable = in.take<uint8_t>() % 8, writable = in.take<uint8_t>() % 8;
  for (int i = 0; i < readable; ++i) {
    chain.readable.push_back({in.take<uint32_t>() % 0x30000, in.take<uint16_t>()});
  }
  for (int i = 0; i < writable; ++i) {
    chain.writable.push_back({in.take<uint32_t>() % 0x30000, in.take<uint16_t>()});
  }
  // Only chains whose buffers lie in RAM reach the parser (DescriptorChain checks that).
  for (const auto* list : {&chain.readable, &chain.writable}) {
    for (const auto& s : *list) {
      if (!mem->contains(GuestAddress(s.addr), s.len)) return 0;
    }
  }
  auto header = in.takeBytes(16);
  if (!chain.readable.empty()) (void)mem->write(GuestAddress(chain.readable[0].addr), header);
  devices::BlockLimits limits{in.take<uint32_t>(), static_cast<bool>(in.take<uint8_t>() & 1), 126,
                              1u << 20};
  auto outcome = devices::parseBlockRequest(chain, *mem, limits);
  if (auto* io = std::get_if<devices::BlockIo>(&outcome)) {
    if (io->type == devices::blk::kTypeIn || io->type == devices::blk::kTypeOut) {
      uint64_t sectors = io->data_len / 512;
      if (io->sector + sectors > limits.capacity_sectors || io->data_len % 512 != 0) abort();
      if (io->type == devices::blk::kTypeOut && limits.read_only) abort();
    }
  }
  return 0;
}
