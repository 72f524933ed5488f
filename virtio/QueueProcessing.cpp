// Chain collection.
#include "virtio/QueueProcessing.h"

#include <algorithm>

namespace ember::virtio {

uint64_t ChainBuffers::readableBytes() const {
  uint64_t n = 0;
  for (const auto& s : readable) n += s.len;
  return n;
}

uint64_t ChainBuffers::writableBytes() const {
  uint64_t n = 0;
  for (const auto& s : writable) n += s.len;
  return n;
}

Result<ChainBuffers> collectChain(DescriptorChain& chain) {
  ChainBuffers b;
  b.head = chain.head();
  for (;;) {
    auto d = EMBER_TRY(chain.next());
    if (!d) {
      return b;
    }
    (d->writable ? b.writable : b.readable).push_back(BufferSegment{d->addr, d->len});
  }
}

Result<ChainBuffers> collectOrReturn(SplitQueue& q, DescriptorChain& chain) {
  auto bufs = collectChain(chain);
  if (!bufs) {
    EMBER_TRY(q.pushUsed(chain.head(), 0));
  }
  return bufs;
}

Result<std::optional<ChainBuffers>> nextChain(SplitQueue& q) {
  for (;;) {
    auto chain = EMBER_TRY(q.pop());
    if (chain) {
      return std::optional<ChainBuffers>(EMBER_TRY(collectOrReturn(q, *chain)));
    }
    if (!EMBER_TRY(q.armNotification())) {
      return std::optional<ChainBuffers>();
    }
  }
}

Result<uint32_t> fillWritable(const GuestMemory& mem, const ChainBuffers& chain,
                              std::span<const uint8_t> bytes) {
  uint32_t written = 0;
  for (const auto& seg : chain.writable) {
    size_t n = std::min<size_t>(seg.len, bytes.size() - written);
    if (n == 0) break;
    EMBER_TRY(mem.write(GuestAddress(seg.addr), bytes.subspan(written, n)));
    written += static_cast<uint32_t>(n);
  }
  return written;
}

}  // namespace ember::virtio
