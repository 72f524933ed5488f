// Linux native AIO (libaio) for one disk: batched submission of caller-owned iocbs, completion
// notification through an eventfd served by the event loop, and draining for reset.
#pragma once

#include <libaio.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

struct AioCompletion {
  iocb* cb;
  int64_t result;  // bytes transferred, or -errno
};

class AioEngine {
 public:
  static Result<std::unique_ptr<AioEngine>> create(unsigned depth);
  ~AioEngine();
  AioEngine(const AioEngine&) = delete;
  AioEngine& operator=(const AioEngine&) = delete;

  int eventFd() const { return event_->fd(); }

  // Prepares `cb` for a vectored read or write that signals this engine's eventfd.
  void prepare(iocb* cb, int fd, bool write, std::span<iovec> iov, uint64_t offset);
  // Submits a batch; returns how many were accepted (the rest should be retried later).
  Result<size_t> submit(std::span<iocb*> batch);
  // Collects finished requests without blocking (after the eventfd fired).
  std::vector<AioCompletion> reap();
  // Waits until `count` more requests have finished (reset and shutdown).
  std::vector<AioCompletion> wait(size_t count);

 private:
  AioEngine() = default;
  io_context_t ctx_ = nullptr;
  std::unique_ptr<EventFd> event_;
};

}  // namespace ember::devices
