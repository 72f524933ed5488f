// libaio submission and completion.
#include "devices/AioEngine.h"

#include <algorithm>
#include <ctime>

#include "kvm/Log.h"

namespace ember::devices {

Result<std::unique_ptr<AioEngine>> AioEngine::create(unsigned depth) {
  std::unique_ptr<AioEngine> e(new AioEngine());  // private constructor
  int r = io_setup(static_cast<int>(depth), &e->ctx_);
  if (r < 0) {
    return Error{Errc::Io, fmt::format("io_setup({}): {}", depth, std::strerror(-r)), -r};
  }
  e->event_ = std::make_unique<EventFd>(EMBER_TRY(EventFd::create()));
  return e;
}

AioEngine::~AioEngine() {
  if (ctx_ != nullptr) {
    io_destroy(ctx_);  // waits for anything still outstanding
  }
}

void AioEngine::prepare(iocb* cb, int fd, bool write, std::span<iovec> iov, uint64_t offset) {
  if (write) {
    io_prep_pwritev(cb, fd, iov.data(), static_cast<int>(iov.size()),
                    static_cast<long long>(offset));
  } else {
    io_prep_preadv(cb, fd, iov.data(), static_cast<int>(iov.size()),
                   static_cast<long long>(offset));
  }
  io_set_eventfd(cb, event_->fd());
}

Result<size_t> AioEngine::submit(std::span<iocb*> batch) {
  if (batch.empty()) {
    return size_t{0};
  }
  int n = io_submit(ctx_, static_cast<long>(batch.size()), batch.data());
  if (n == -EAGAIN) {
    return size_t{0};
  }
  if (n < 0) {
    return Error{Errc::Io, fmt::format("io_submit: {}", std::strerror(-n)), -n};
  }
  return static_cast<size_t>(n);
}

std::vector<AioCompletion> AioEngine::reap() {
  std::vector<AioCompletion> out;
  event_->consume();
  io_event events[64];
  for (;;) {
    timespec zero{0, 0};
    int n = io_getevents(ctx_, 0, 64, events, &zero);
    if (n <= 0) {
      return out;
    }
    for (int i = 0; i < n; ++i) {
      out.push_back(AioCompletion{events[i].obj, static_cast<int64_t>(events[i].res)});
    }
  }
}

std::vector<AioCompletion> AioEngine::wait(size_t count) {
  std::vector<AioCompletion> out;
  io_event events[64];
  while (out.size() < count) {
    timespec limit{5, 0};
    long want = std::min<long>(64, static_cast<long>(count - out.size()));
    int n = io_getevents(ctx_, 1, want, events, &limit);
    if (n == -EINTR) {
      continue;
    }
    if (n == 0) {
      // The iocbs point into memory the caller owns, so giving up is not an option: say why we
      // are still here instead of hanging silently.
      log::warn("disk I/O: still waiting for {} request(s) to finish", count - out.size());
      continue;
    }
    if (n < 0) {
      log::error("disk I/O: io_getevents: {}", std::strerror(-n));
      break;
    }
    for (int i = 0; i < n; ++i) {
      out.push_back(AioCompletion{events[i].obj, static_cast<int64_t>(events[i].res)});
    }
  }
  event_->consume();
  return out;
}

}  // namespace ember::devices
