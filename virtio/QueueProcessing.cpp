// Chain collection.
#include "virtio/QueueProcessing.h"

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

}  // namespace ember::virtio
