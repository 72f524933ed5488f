// io_uring submission and completion.
#include "devices/UringEngine.h"

#include <cstring>

#include "kvm/Log.h"

namespace ember::devices {

Result<std::unique_ptr<UringEngine>> UringEngine::create(unsigned depth, unsigned ring_entries) {
  std::unique_ptr<UringEngine> e(new UringEngine());  // private constructor
  int r = io_uring_queue_init(ring_entries == 0 ? depth : ring_entries, &e->ring_, 0);
  if (r < 0) {
    return Error{Errc::Unsupported,
                 fmt::format("io_uring_setup: {}: io_uring is disabled here (sysctl "
                             "kernel.io_uring_disabled=0 enables it) or blocked by a seccomp "
                             "filter; use aio=libaio",
                             std::strerror(-r)),
                 -r};
  }
  e->ring_ready_ = true;
  e->cq_entries_ = e->ring_.cq.ring_entries;
  e->event_ = std::make_unique<EventFd>(EMBER_TRY(EventFd::create()));
  r = io_uring_register_eventfd(&e->ring_, e->event_->fd());
  if (r < 0) {
    return Error{Errc::Io, fmt::format("io_uring_register_eventfd: {}", std::strerror(-r)), -r};
  }
  e->queued_.reserve(depth);
  return e;
}

UringEngine::~UringEngine() {
  if (ring_ready_) {
    drain();
    io_uring_queue_exit(&ring_);
  }
}

void UringEngine::enqueue(const BlockEngineRequest& request) {
  queued_.push_back(request);
}

void UringEngine::submit() {
  // Fill free SQEs in order, keeping the CQEs the kernel may have to post within the CQ ring.
  unsigned prepared = 0;
  while (queued_head_ < queued_.size() && outstanding_ < cq_entries_) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      break;  // the SQ ring is full: the rest waits for the next submit()
    }
    const BlockEngineRequest& req = queued_[queued_head_++];
    auto count = static_cast<unsigned>(req.iov.size());
    switch (req.op) {
      case BlockOp::Read:
        io_uring_prep_readv(sqe, req.fd, req.iov.data(), count, req.offset);
        break;
      case BlockOp::Write:
        io_uring_prep_writev(sqe, req.fd, req.iov.data(), count, req.offset);
        break;
      case BlockOp::Flush:
        io_uring_prep_fsync(sqe, req.fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data64(sqe, req.tag);
    ++outstanding_;
    ++prepared;
  }
  if (queued_head_ == queued_.size()) {
    queued_.clear();
    queued_head_ = 0;
  }
  if (prepared == 0 && io_uring_sq_ready(&ring_) == 0) {
    return;
  }
  for (;;) {
    int r = io_uring_submit(&ring_);
    if (r == -EINTR) {
      continue;
    }
    if (r < 0 && r != -EAGAIN && r != -EBUSY) {
      // A failed io_uring_enter leaves the SQEs in the SQ ring, where the next submit() sends
      // them again; individual requests fail through their CQEs, not here.
      log::warn("disk I/O: io_uring_submit: {}", std::strerror(-r));
    }
    // -EAGAIN/-EBUSY: the kernel is short of resources or the CQ is busy; the SQEs stay in the
    // ring for the next submit(), which every completion and every kick makes.
    return;
  }
}

void UringEngine::collect(std::vector<BlockCompletion>* out) {
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (out != nullptr) {
      out->push_back(BlockCompletion{static_cast<uint32_t>(io_uring_cqe_get_data64(cqe)),
                                     static_cast<int64_t>(cqe->res)});
    }
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
  outstanding_ -= seen;
}

void UringEngine::reap(std::vector<BlockCompletion>& out) {
  event_->consume();
  collect(&out);
}

void UringEngine::drain() {
  queued_.clear();
  queued_head_ = 0;
  while (outstanding_ > 0) {
    // Whatever is still in the SQ ring goes to the kernel now, so that its CQE will come.
    (void)io_uring_submit(&ring_);
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec limit{5, 0};
    int r = io_uring_wait_cqe_timeout(&ring_, &cqe, &limit);
    if (r == -ETIME) {
      // The SQEs point into memory the caller owns: say why we are still here.
      log::warn("disk I/O: still waiting for {} request(s) to finish", outstanding_);
      continue;
    }
    if (r < 0 && r != -EINTR) {
      log::error("disk I/O: io_uring_wait_cqe: {}", std::strerror(-r));
      break;
    }
    collect(nullptr);
  }
  if (event_ != nullptr) {
    event_->consume();
  }
}

}  // namespace ember::devices
