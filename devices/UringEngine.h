// The io_uring engine (`aio=io_uring`): one ring per disk queue, set up with
// io_uring_queue_init(3). Requests become IORING_OP_READV, IORING_OP_WRITEV and IORING_OP_FSYNC
// (IORING_FSYNC_DATASYNC: fdatasync) SQEs whose user_data is the tag; io_uring_submit(3) hands a
// batch to the kernel with one io_uring_enter(2). The ring signals the engine's eventfd for every
// CQE (io_uring_register_eventfd(3)), which the event loop serves like libaio's.
//
// A full ring loses nothing: requests wait in the engine until SQEs are free, and no more are
// submitted than the completion queue has room for (cq_entries), so the kernel never has to
// hold completions back.
#pragma once

#include <liburing.h>

#include <memory>
#include <vector>

#include "devices/BlockEngine.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class UringEngine final : public BlockEngine {
 public:
  // `ring_entries` SQEs (0: `depth`); the kernel rounds it up to a power of two.
  static Result<std::unique_ptr<UringEngine>> create(unsigned depth, unsigned ring_entries = 0);
  ~UringEngine() override;

  BlockEngineKind kind() const override { return BlockEngineKind::IoUring; }
  int eventFd() const override { return event_->fd(); }
  void enqueue(const BlockEngineRequest& request) override;
  void submit() override;
  void reap(std::vector<BlockCompletion>& out) override;
  void drain() override;

 private:
  UringEngine() = default;
  void collect(std::vector<BlockCompletion>* out);

  io_uring ring_{};
  bool ring_ready_ = false;
  std::unique_ptr<EventFd> event_;
  std::vector<BlockEngineRequest> queued_;  // waiting for an SQE, in order from queued_head_
  size_t queued_head_ = 0;
  size_t outstanding_ = 0;  // SQEs prepared whose CQE has not been seen
  unsigned cq_entries_ = 0;
};

}  // namespace ember::devices
