// virtio-blk (virtio 1.2, 5.2) on a raw image file, with an I/O engine chosen by `aio=` (libaio,
// io_uring or sync; devices/BlockEngine.h), and `num-queues` request queues (VIRTIO_BLK_F_MQ,
// 5.2.3; num_queues in the configuration, 5.2.4), each served on its own.
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
  // num-queues: at most this many request queues (VIRTIO_BLK_F_MQ).
  static constexpr uint16_t kMaxQueues = 64;

  // `loop` serves the completion eventfds; without one, call processCompletions() (tests).
  // `num_queues` request queues (1 to kMaxQueues), each with an engine of `engine`'s kind.
  static Result<std::unique_ptr<VirtioBlock>> create(
      BlockFile file, std::string serial, EventLoop* loop,
      BlockEngineKind engine = BlockEngineKind::LibAio, uint16_t num_queues = 1);
  ~VirtioBlock() override;

  std::string name() const override;
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override { return static_cast<uint16_t>(queues_.size()); }
  uint16_t queueMaxSize(uint16_t) const override { return kQueueSize; }
  uint32_t configSize() const override { return 36; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  // A snapshot: the requests in flight complete (within kDrainTimeoutMs) and the image is
  // synced; the device has no state beyond its queues.
  Result<virtio::QueuePositions> saveState(StateWriter& w) override;

  BlockEngineKind engineKind() const { return queues_.front()->aio->kind(); }
  // Handles finished I/O requests of every queue (the event loop calls the per-queue part when
  // that queue's eventfd fires).
  void processCompletions();
  // The medium, for the machine's syncs at pause and exit; it changes only in replaceMedium,
  // which the machine serialises with those.
  const BlockFile& file() const { return file_; }
  // PATCH /drives/{id} path_on_host (Firecracker's medium change): every request in flight
  // completes on the old medium first and is reported to the guest, the old image is
  // fdatasync'ed, then FILE (opened with this disk's read-only setting) serves every later
  // request, and a configuration-change interrupt announces its capacity (virtio 1.2 5.2.4,
  // 4.1.4.3: the config generation moves). Fails, changing nothing, when the requests in flight
  // do not finish within kDrainTimeoutMs or the old image cannot be synced.
  Result<void> replaceMedium(BlockFile file);
  static constexpr int kDrainTimeoutMs = 5000;
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
  // One request queue (5.2.2 requestq1..N) with an engine of its own: its completions come on
  // its own eventfd, so a round of the event loop serves one queue's completions, their tags
  // index its own slots, and the queues never wait for each other's requests (a flush waits
  // only for what is in flight on its queue: what other queues completed is already in the
  // file, which fdatasync covers whole). The device's one mutex still serialises them: the
  // event loop is one thread, so per-queue locks would buy no parallelism.
  struct RequestQueue {
    uint16_t index = 0;
    std::unique_ptr<BlockEngine> aio;
    EventLoop::Registration completion_reg;
    std::vector<Slot> slots;
    std::vector<uint16_t> free_slots;
    size_t outstanding = 0;                  // given to the engine, completion not yet reaped
    std::vector<uint16_t> deferred_flushes;  // flush slots waiting for earlier requests
    std::vector<BlockCompletion> completions;
    bool pushed = false;        // used entries added since the last interrupt decision
    bool ring_blocked = false;  // the last drain stopped at the in-flight cap
  };

  VirtioBlock(BlockFile file, std::string serial);
  // The queue `index` when the driver enabled it (and negotiated VIRTIO_BLK_F_MQ for index > 0).
  virtio::SplitQueue* liveQueueLocked(uint16_t index);
  Result<void> handleChainLocked(RequestQueue& rq, virtio::DescriptorChain& chain);
  void completeLocked(RequestQueue& rq, uint16_t head, uint64_t status_addr, uint8_t status,
                      uint32_t used_len);
  void finishSlotLocked(RequestQueue& rq, Slot& slot, int64_t result);
  void processLocked(RequestQueue& rq);
  bool reapLocked(RequestQueue& rq);  // completes finished requests; true if there were any
  void processCompletionsLocked(RequestQueue& rq);
  void warnLocked(const std::string& what);
  // Waits (bounded) until the queue has nothing in flight, completing what finishes.
  Result<void> finishInFlightLocked(RequestQueue& rq);

  BlockFile file_;
  // name() is read by the transport's threads without mutex_ (and by warnLocked with it): the
  // path it names has its own lock, so a medium change can rename the device.
  mutable std::mutex name_mutex_;
  std::string path_;
  // The medium's read-only setting, fixed at creation (VIRTIO_BLK_F_RO is offered by it, and a
  // new medium must match it): read by features() without mutex_.
  const bool read_only_;
  std::string serial_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  std::vector<std::unique_ptr<RequestQueue>> queues_;  // stable addresses for the loop callbacks
  uint64_t failed_ = 0;
  uint64_t rejected_ = 0;
  uint64_t completed_ = 0;
  uint64_t bytes_ = 0;
  uint64_t warnings_ = 0;
};

}  // namespace ember::devices
