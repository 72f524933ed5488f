// RAII owner of a file descriptor, and the eventfd built on it.
//
// Every fd Ember opens (KVM system, VM, vCPU, eventfds, disk files, taps, epoll) is held by a
// UniqueFd so that no error path can leak one.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

#include "kvm/Result.h"

namespace ember {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.fd_, -1));
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A non-blocking, close-on-exec eventfd: the currency of kicks (ioeventfd), interrupts (irqfd)
// and completions (libaio).
class EventFd {
 public:
  static Result<EventFd> create();

  int fd() const { return fd_.get(); }
  // Adds one to the counter. Never blocks (the counter cannot realistically overflow).
  void signal() const;
  // Reads and clears the counter; returns 0 when it was not signalled.
  uint64_t consume() const;

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace ember
