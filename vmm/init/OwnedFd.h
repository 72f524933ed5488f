// OwnedFd: the guest init's RAII file descriptor.
//
// The init links only libstdc++ and libc, not ember's kvm/ library whose UniqueFd brings its
// {fmt}-based Result along; this is the same idea in the few lines the init needs. Every fd the
// init opens is close-on-exec and held by one of these, so the command inherits only the three
// descriptors it is given.
#pragma once

#include <unistd.h>

#include <utility>

namespace ember::init {

class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace ember::init
