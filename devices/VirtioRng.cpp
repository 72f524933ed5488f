// Entropy requests.
#include "devices/VirtioRng.h"

#include <sys/random.h>

#include <algorithm>

#include "virtio/QueueProcessing.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

uint16_t VirtioRng::deviceType() const {
  return device_type::kEntropy;
}

uint64_t VirtioRng::features() const {
  return feature::kIndirectDesc | feature::kEventIdx;
}

void VirtioRng::readConfig(uint32_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

Result<void> VirtioRng::activate(const Activation& activation) {
  std::lock_guard lock(mutex_);
  if (activation.queues.empty() || activation.queues[0] == nullptr) {
    return makeError(Errc::Guest, "virtio-rng activated without its request queue");
  }
  act_ = activation;
  return {};
}

void VirtioRng::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (!act_ || queue != 0) {
    return;
  }
  SplitQueue& q = *act_->queues[0];
  const GuestMemory& mem = *act_->memory;
  bool pushed = false;
  auto r = drainAvailable(q, [&](DescriptorChain& chain) -> Result<void> {
    auto bufs = collectOrReturn(q, chain);
    if (!bufs) {
      pushed = true;
      return std::move(bufs).error();
    }
    uint32_t written = 0;
    bool short_fill = false;
    uint8_t buf[4096];
    for (const auto& seg : bufs->writable) {
      uint32_t off = 0;
      while (off < seg.len && written < kMaxPerRequest) {
        size_t n = std::min<size_t>({sizeof buf, seg.len - off, kMaxPerRequest - written});
        ssize_t got = ::getrandom(buf, n, 0);
        if (got <= 0) {
          short_fill = true;
          break;
        }
        EMBER_TRY(
            mem.write(GuestAddress(seg.addr + off), std::span(buf, static_cast<size_t>(got))));
        off += static_cast<uint32_t>(got);
        written += static_cast<uint32_t>(got);
      }
    }
    EMBER_TRY(q.pushUsed(bufs->head, written));
    ++counters_.requests;
    counters_.errors += short_fill ? 1 : 0;
    counters_.bytes += written;
    pushed = true;
    return {};
  });
  if (pushed) {
    act_->host->queueUsed(0, q);
  }
  if (!r) {
    act_->host->needsReset(r.error().message);
  }
}

DeviceCounters VirtioRng::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void VirtioRng::reset() {
  std::lock_guard lock(mutex_);
  act_.reset();
}

}  // namespace ember::devices
