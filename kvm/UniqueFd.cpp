// eventfd creation, signalling and draining.
#include "kvm/UniqueFd.h"

#include <cerrno>

namespace ember {

Result<EventFd> EventFd::create() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return Error::fromErrno(Errc::Io, "eventfd");
  }
  return EventFd(UniqueFd(fd));
}

void EventFd::signal() const {
  uint64_t one = 1;
  while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

uint64_t EventFd::consume() const {
  uint64_t value = 0;
  for (;;) {
    ssize_t n = ::read(fd_.get(), &value, sizeof value);
    if (n == sizeof value) {
      return value;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return 0;  // EAGAIN: not signalled
  }
}

}  // namespace ember
