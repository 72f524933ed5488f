// stdin -> console device, with raw terminal mode and the Ctrl-A x escape.
#include "devices/ConsoleInput.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "kvm/Log.h"

namespace ember::devices {

namespace {
constexpr uint8_t kCtrlA = 0x01;
}

ConsoleInput::ConsoleInput(EventLoop& loop, int fd, Sink sink, QuitHandler quit)
    : loop_(loop), fd_(fd), sink_(std::move(sink)), quit_(std::move(quit)) {}

ConsoleInput::~ConsoleInput() {
  reg_.reset();
  if (saved_termios_) {
    ::tcsetattr(fd_, TCSAFLUSH, &*saved_termios_);
  }
}

Result<bool> ConsoleInput::start() {
  if (::fcntl(fd_, F_GETFD) < 0) {
    return false;  // stdin is closed
  }
  if (::isatty(fd_)) {
    termios t{};
    if (::tcgetattr(fd_, &t) == 0) {
      saved_termios_ = t;
      ::cfmakeraw(&t);
      t.c_oflag |= OPOST;  // keep \n -> \r\n for the host's own output
      ::tcsetattr(fd_, TCSAFLUSH, &t);
    }
  }
  auto reg = loop_.add(fd_, EPOLLIN, [this](uint32_t ev) { onReadable(ev); });
  if (!reg) {
    if (reg.error().code == Errc::Unsupported) {
      return false;  // regular file or /dev/null: not pollable, no input
    }
    return std::move(reg).error();
  }
  std::lock_guard lock(mutex_);
  reg_ = std::move(*reg);
  return true;
}

void ConsoleInput::deliverPending() {
  size_t taken = sink_(pending_);
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(taken));
  bool want_pause = !pending_.empty();
  if (want_pause != paused_) {
    paused_ = want_pause;
    (void)reg_.setEvents(paused_ ? 0u : static_cast<uint32_t>(EPOLLIN));
  }
}

void ConsoleInput::onReadable(uint32_t events) {
  std::unique_lock lock(mutex_);
  if (!pending_.empty()) {
    deliverPending();
    return;
  }
  uint8_t buf[256];
  ssize_t n = ::read(fd_, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      return;
    }
    if (events & (EPOLLHUP | EPOLLERR) || n == 0) {
      reg_.reset();  // end of input: stop watching
    }
    return;
  }
  bool quit = false;
  for (ssize_t i = 0; i < n; ++i) {
    uint8_t c = buf[i];
    if (saved_termios_) {
      if (escape_) {
        escape_ = false;
        if (c == 'x' || c == 'X') {
          quit = true;
          break;
        }
        if (c != kCtrlA) {
          pending_.push_back(kCtrlA);
        }
      } else if (c == kCtrlA) {
        escape_ = true;
        continue;
      }
    }
    pending_.push_back(c);
  }
  if (quit) {
    lock.unlock();
    quit_();
    return;
  }
  deliverPending();
}

void ConsoleInput::resume() {
  std::lock_guard lock(mutex_);
  if (!reg_.active()) {
    return;
  }
  if (!pending_.empty()) {
    deliverPending();
  } else if (paused_) {
    paused_ = false;
    (void)reg_.setEvents(EPOLLIN);
  }
}

}  // namespace ember::devices
