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

Result<void> VirtioRng::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  if (activation.queue(0) == nullptr) {
    return makeError(Errc::Guest, "virtio-rng activated without its request queue");
  }
  act_ = std::move(activation);
  return {};
}

void VirtioRng::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (!act_ || queue != 0) {
    return;
  }
  const GuestMemory& mem = *act_->memory;
  serveQueue(*act_, 0, [&](const ChainBuffers& bufs) -> ChainOutcome {
    uint32_t written = 0;
    bool short_fill = false;
    uint8_t buf[4096];
    for (const auto& seg : bufs.writable) {
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
    ++counters_.requests;
    counters_.errors += short_fill ? 1 : 0;
    counters_.bytes += written;
    return completeChain(written);
  });
}

DeviceCounters VirtioRng::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

QueueSet VirtioRng::reset() {
  std::lock_guard lock(mutex_);
  return releaseQueues(act_);
}

Result<QueuePositions> VirtioRng::saveState(StateWriter& /*w*/) {
  std::lock_guard lock(mutex_);
  return queuePositions(act_);
}

}  // namespace ember::devices
