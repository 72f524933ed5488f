// libaio submission and completion.
#include "devices/AioEngine.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "kvm/Log.h"

namespace ember::devices {

Result<std::unique_ptr<AioEngine>> AioEngine::create(unsigned depth, unsigned context_events) {
  std::unique_ptr<AioEngine> e(new AioEngine(depth));  // private constructor
  unsigned events = context_events == 0 ? depth : context_events;
  int r = io_setup(static_cast<int>(events), &e->ctx_);
  if (r < 0) {
    return Error{Errc::Io,
                 fmt::format("io_setup({}): {} (raise sysctl fs.aio-max-nr, or use aio=io_uring "
                             "or aio=sync)",
                             events, std::strerror(-r)),
                 -r};
  }
  e->event_ = std::make_unique<EventFd>(EMBER_TRY(EventFd::create()));
  e->queued_.reserve(depth);
  return e;
}

AioEngine::~AioEngine() {
  if (ctx_ != nullptr) {
    io_destroy(ctx_);  // waits for anything still outstanding
  }
}

void AioEngine::enqueue(const BlockEngineRequest& req) {
  iocb* cb = &cbs_.at(req.tag);
  // libaio's iovec pointers are not const, but a write only reads them and a read fills the
  // memory they point at, never the iovec array itself.
  auto* iov = const_cast<iovec*>(req.iov.data());
  int count = static_cast<int>(req.iov.size());
  auto offset = static_cast<long long>(req.offset);
  switch (req.op) {
    case BlockOp::Read:
      io_prep_preadv(cb, req.fd, iov, count, offset);
      break;
    case BlockOp::Write:
      io_prep_pwritev(cb, req.fd, iov, count, offset);
      break;
    case BlockOp::Flush:
      io_prep_fdsync(cb, req.fd);
      break;
  }
  io_set_eventfd(cb, event_->fd());
  cb->data = reinterpret_cast<void*>(static_cast<uintptr_t>(req.tag));
  queued_.push_back(cb);
}

void AioEngine::refuseFront(int err) {
  auto tag = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(queued_.front()->data));
  refused_.push_back(BlockCompletion{tag, -static_cast<int64_t>(err)});
  queued_.erase(queued_.begin());
}

void AioEngine::submit() {
  while (!queued_.empty()) {
    int n = io_submit(ctx_, static_cast<long>(queued_.size()), queued_.data());
    if (n == -EAGAIN) {
      // The context (or the kernel's fs.aio-max-nr) is full: a completion makes room and the
      // next submit() sends the rest. With nothing in flight none would come, so the request
      // fails instead of hanging the queue.
      if (in_flight_ > 0) {
        break;
      }
      refuseFront(EAGAIN);
      continue;
    }
    if (n < 0) {
      // io_submit(2) submits a batch up to the first iocb it refuses, and reports an error only
      // when that is the first one: fail that request alone and go on with the rest.
      refuseFront(-n);
      continue;
    }
    in_flight_ += static_cast<size_t>(n);
    queued_.erase(queued_.begin(), queued_.begin() + n);
  }
  if (!refused_.empty()) {
    event_->signal();
  }
}

void AioEngine::reap(std::vector<BlockCompletion>& out) {
  event_->consume();
  out.insert(out.end(), refused_.begin(), refused_.end());
  refused_.clear();
  io_event events[64];
  while (in_flight_ > 0) {
    timespec zero{0, 0};
    int n = io_getevents(ctx_, 0, 64, events, &zero);
    if (n <= 0) {
      return;
    }
    in_flight_ -= static_cast<size_t>(n);
    for (int i = 0; i < n; ++i) {
      out.push_back(
          BlockCompletion{static_cast<uint32_t>(reinterpret_cast<uintptr_t>(events[i].data)),
                          static_cast<int64_t>(events[i].res)});
    }
  }
}

void AioEngine::drain() {
  queued_.clear();
  refused_.clear();
  io_event events[64];
  while (in_flight_ > 0) {
    timespec limit{5, 0};
    long want = std::min<long>(64, static_cast<long>(in_flight_));
    int n = io_getevents(ctx_, 1, want, events, &limit);
    if (n == -EINTR) {
      continue;
    }
    if (n == 0) {
      // The iocbs point into memory the caller owns, so giving up is not an option: say why we
      // are still here instead of hanging silently.
      log::warn("disk I/O: still waiting for {} request(s) to finish", in_flight_);
      continue;
    }
    if (n < 0) {
      log::error("disk I/O: io_getevents: {}", std::strerror(-n));
      break;
    }
    in_flight_ -= static_cast<size_t>(n);
  }
  event_->consume();
}

}  // namespace ember::devices
