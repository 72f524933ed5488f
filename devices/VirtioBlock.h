// virtio-blk (virtio 1.2, 5.2) on a raw image file, with an I/O engine chosen by `aio=` (libaio,
// io_uring or sync; devices/BlockEngine.h).
//
// Requests are parsed and validated by parseBlockRequest, then batched per kick into one
// submission to the engine; completions arrive on the engine's eventfd in the event loop, which
// writes each status byte and returns the chain to the used ring. Every completion collected in
// one round is pushed before the used ring is signalled once (queueUsed, which applies
// EVENT_IDX / VRING_AVAIL_F_NO_INTERRUPT), so a batch costs one interrupt. Aligned requests use an
// O_DIRECT descriptor when the file system allows it, everything else the buffered one. An I/O
// error or short transfer fails only its own request (hostile-guest case 37). Reset waits for
// in-flight requests and discards their results, so nothing is written to guest memory afterwards
// (case 25). FLUSH is the engine's fdatasync of the image, issued after every earlier request has
// completed.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "devices/BlockEngine.h"
#include "devices/BlockFile.h"
#include "devices/BlockRequest.h"
#include "kvm/EventLoop.h"
#include "virtio/VirtioDevice.h"

namespace ember::devices {

class VirtioBlock : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kSegMax = kQueueSize - 2;
  static constexpr uint32_t kSizeMax = 1 << 20;

  // `loop` serves the completion eventfd; without one, call processCompletions() (tests).
  static Result<std::unique_ptr<VirtioBlock>> create(
      BlockFile file, std::string serial, EventLoop* loop,
      BlockEngineKind engine = BlockEngineKind::LibAio);
  ~VirtioBlock() override;

  std::string name() const override;
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override { return 1; }
  uint16_t queueMaxSize(uint16_t) const override { return kQueueSize; }
  uint32_t configSize() const override { return 36; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;

  BlockEngineKind engineKind() const { return aio_->kind(); }
  // Handles finished I/O requests (the event loop calls this when the eventfd fires).
  void processCompletions();
  const BlockFile& file() const { return file_; }
  uint64_t failedRequests() const;
  // requests: completed requests; bytes: data read and written; errors: requests failed with an
  // I/O error or rejected as malformed; dropped: 0 (a request is never dropped).
  virtio::DeviceCounters counters() const override;

 private:
  struct Slot {
    std::vector<iovec> iov;
    uint16_t head = 0;
    uint64_t status_addr = 0;
    uint64_t expected = 0;  // bytes the transfer must move
    uint32_t used_len = 0;
    bool write = false;
    uint64_t sector = 0;
    bool flush = false;
    bool busy = false;
  };

  VirtioBlock(BlockFile file, std::string serial);
  Result<void> handleChainLocked(virtio::DescriptorChain& chain);
  void completeLocked(uint16_t head, uint64_t status_addr, uint8_t status, uint32_t used_len);
  void finishSlotLocked(Slot& slot, int64_t result);
  void submitLocked();
  void processLocked();
  bool reapLocked();  // completes finished requests; true if there were any
  void warnLocked(const std::string& what);

  BlockFile file_;
  std::string serial_;
  std::unique_ptr<BlockEngine> aio_;
  EventLoop::Registration completion_reg_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  std::vector<Slot> slots_;
  std::vector<uint16_t> free_slots_;
  size_t outstanding_ = 0;                  // given to the engine, completion not yet reaped
  std::vector<uint16_t> deferred_flushes_;  // flush slots waiting for earlier requests
  std::vector<BlockCompletion> completions_;
  bool pushed_ = false;        // used entries added since the last interrupt decision
  bool ring_blocked_ = false;  // the last drain stopped at the in-flight cap
  uint64_t failed_ = 0;
  uint64_t rejected_ = 0;
  uint64_t completed_ = 0;
  uint64_t bytes_ = 0;
  uint64_t warnings_ = 0;
};

}  // namespace ember::devices
