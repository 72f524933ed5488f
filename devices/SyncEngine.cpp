// Synchronous I/O on the serving thread.
#include "devices/SyncEngine.h"

#include <unistd.h>

#include <cerrno>

namespace ember::devices {

Result<std::unique_ptr<SyncEngine>> SyncEngine::create(unsigned depth) {
  std::unique_ptr<SyncEngine> e(new SyncEngine());  // private constructor
  e->event_ = std::make_unique<EventFd>(EMBER_TRY(EventFd::create()));
  e->queued_.reserve(depth);
  e->done_.reserve(depth);
  return e;
}

void SyncEngine::enqueue(const BlockEngineRequest& request) {
  queued_.push_back(request);
}

void SyncEngine::submit() {
  if (queued_.empty()) {
    return;
  }
  for (const BlockEngineRequest& req : queued_) {
    auto count = static_cast<int>(req.iov.size());
    auto offset = static_cast<off_t>(req.offset);
    ssize_t r = 0;
    do {
      // One call per request, as the asynchronous engines make: a short transfer is reported
      // as it is, and the device fails the request.
      switch (req.op) {
        case BlockOp::Read:
          r = ::preadv(req.fd, req.iov.data(), count, offset);
          break;
        case BlockOp::Write:
          r = ::pwritev(req.fd, req.iov.data(), count, offset);
          break;
        case BlockOp::Flush:
          r = ::fdatasync(req.fd);
          break;
      }
    } while (r < 0 && errno == EINTR);
    done_.push_back(BlockCompletion{req.tag, r < 0 ? -static_cast<int64_t>(errno) : r});
  }
  queued_.clear();
  event_->signal();
}

void SyncEngine::reap(std::vector<BlockCompletion>& out) {
  event_->consume();
  out.insert(out.end(), done_.begin(), done_.end());
  done_.clear();
}

void SyncEngine::drain() {
  // Nothing is ever in the kernel's hands once submit() returns.
  queued_.clear();
  done_.clear();
  event_->consume();
}

}  // namespace ember::devices
