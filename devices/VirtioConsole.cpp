// virtio-console port 0 data path.
#include "devices/VirtioConsole.h"

#include <algorithm>
#include <vector>

#include "virtio/QueueProcessing.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

namespace {
constexpr uint32_t kMaxTransmitChunk = 64 * 1024;
}

VirtioConsole::VirtioConsole(OutputSink output) : output_(std::move(output)) {}

uint16_t VirtioConsole::deviceType() const {
  return device_type::kConsole;
}

uint64_t VirtioConsole::features() const {
  return feature::kIndirectDesc | feature::kEventIdx;
}

void VirtioConsole::readConfig(uint32_t offset, std::span<uint8_t> data) {
  // 5.3.4 struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr; none of the features
  // that give them meaning is offered, so they read as zero.
  uint8_t image[12] = {};
  readConfigBytes(image, offset, data);
}

Result<void> VirtioConsole::activate(Activation activation) {
  {
    std::lock_guard lock(mutex_);
    if (activation.queue(kTransmitQueue) == nullptr) {
      return makeError(Errc::Guest, "virtio-console activated without its transmit queue");
    }
    act_ = std::move(activation);
  }
  if (on_room_) {
    on_room_();
  }
  return {};
}

void VirtioConsole::notify(uint16_t queue) {
  if (queue == kReceiveQueue) {
    // New receive buffers: pending host input can flow again.
    if (on_room_) on_room_();
    return;
  }
  std::lock_guard lock(mutex_);
  if (act_ && queue == kTransmitQueue) {
    transmitLocked();
  }
}

void VirtioConsole::transmitLocked() {
  const GuestMemory& mem = *act_->memory;
  std::vector<uint8_t> bytes;
  bool intact = serveQueue(*act_, kTransmitQueue, [&](const ChainBuffers& bufs) -> ChainOutcome {
    for (const auto& seg : bufs.readable) {
      uint32_t len = std::min(seg.len, kMaxTransmitChunk);
      bytes.resize(len);
      EMBER_TRY(mem.read(GuestAddress(seg.addr), bytes));
      output_(bytes);
      counters_.bytes += len;
      counters_.dropped += seg.len - len;
    }
    ++counters_.requests;
    return completeChain(0);
  });
  counters_.errors += intact ? 0 : 1;
}

size_t VirtioConsole::pushInput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if (!act_ || !act_->queue(kReceiveQueue) || !act_->host->mayProcess()) {
    return 0;
  }
  SplitQueue& q = *act_->queue(kReceiveQueue);
  const GuestMemory& mem = *act_->memory;
  size_t taken = 0;
  bool pushed = false;
  while (taken < bytes.size()) {
    auto chain = q.pop();
    if (!chain) {
      act_->host->needsReset(chain.error().message);
      break;
    }
    if (!*chain) {
      // No receive buffers. With EVENT_IDX the driver only kicks past avail_event: publish it,
      // and take any buffer that raced in; otherwise the caller keeps the rest and pauses.
      auto more = q.armNotification();
      if (more && *more) continue;
      break;
    }
    auto bufs = collectChain(**chain);
    pushed = true;
    if (!bufs) {
      ++counters_.errors;
      (void)q.pushUsed((*chain)->head(), 0);
      act_->host->needsReset(bufs.error().message);
      break;
    }
    uint32_t written = 0;
    for (const auto& seg : bufs->writable) {
      size_t n = std::min<size_t>(seg.len, bytes.size() - taken);
      if (n == 0) break;
      if (!mem.write(GuestAddress(seg.addr), bytes.subspan(taken, n))) break;
      taken += n;
      written += static_cast<uint32_t>(n);
    }
    if (!q.pushUsed(bufs->head, written)) break;
    ++counters_.requests;
    counters_.bytes += written;
  }
  if (pushed) {
    act_->host->queueUsed(kReceiveQueue, q);
  }
  return taken;
}

DeviceCounters VirtioConsole::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

QueueSet VirtioConsole::reset() {
  std::lock_guard lock(mutex_);
  return releaseQueues(act_);
}

}  // namespace ember::devices
