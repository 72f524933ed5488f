// Bounded, drop-counting console output with a writer thread.
#include "devices/ConsoleOutput.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

namespace ember::devices {

ConsoleOutput::ConsoleOutput(int fd, size_t capacity)
    : fd_(fd), capacity_(capacity), writer_([this](std::stop_token st) { writerLoop(st); }) {}

ConsoleOutput::~ConsoleOutput() {
  flush(1000);
  writer_.request_stop();
  cv_.notify_all();
}

void ConsoleOutput::write(std::span<const uint8_t> bytes) {
  {
    std::lock_guard lock(mutex_);
    if (broken_) {
      return;
    }
    size_t limit = 2 * capacity_;  // hasRoom()'s writers may overshoot the capacity
    size_t room = buffer_.size() < limit ? limit - buffer_.size() : 0;
    size_t n = std::min(room, bytes.size());
    if (total_limit_ != 0) {
      if (accepted_ >= total_limit_) {
        dropped_ += bytes.size();
        return;
      }
      n = static_cast<size_t>(std::min<uint64_t>(n, total_limit_ - accepted_));
    }
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.begin() + n);
    dropped_ += bytes.size() - n;
    accepted_ += n;
    if (total_limit_ != 0 && accepted_ >= total_limit_) {
      std::string cut =
          fmt::format("\n[ember: output cut here, at its limit of {} bytes]\n", total_limit_);
      buffer_.insert(buffer_.end(), cut.begin(), cut.end());
    }
  }
  cv_.notify_one();
}

bool ConsoleOutput::hasRoom() {
  std::lock_guard lock(mutex_);
  if (broken_ || buffer_.size() < capacity_) {
    return true;
  }
  want_room_ = true;
  return false;
}

int ConsoleOutput::addRoomCallback(std::function<void()> callback) {
  std::lock_guard lock(callbacks_mutex_);
  room_callbacks_.emplace(next_callback_, std::move(callback));
  return next_callback_++;
}

void ConsoleOutput::removeRoomCallback(int id) {
  std::lock_guard lock(callbacks_mutex_);
  room_callbacks_.erase(id);
}

void ConsoleOutput::setTotalLimit(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  total_limit_ = bytes;
}

bool ConsoleOutput::cut() const {
  std::lock_guard lock(mutex_);
  return total_limit_ != 0 && accepted_ >= total_limit_;
}

uint64_t ConsoleOutput::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

bool ConsoleOutput::flush(int timeout_ms) {
  std::unique_lock lock(mutex_);
  return drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [this] { return (buffer_.empty() && !writing_) || broken_; });
}

void ConsoleOutput::writerLoop(std::stop_token stop) {
  std::vector<uint8_t> chunk;
  for (;;) {
    bool call_back = false;
    {
      std::lock_guard lock(mutex_);
      if (want_room_ && (buffer_.size() <= capacity_ / 2 || broken_)) {
        want_room_ = false;
        call_back = true;
      }
    }
    if (call_back) {
      std::lock_guard lock(callbacks_mutex_);
      for (auto& [id, callback] : room_callbacks_) callback();
    }
    {
      std::unique_lock lock(mutex_);
      writing_ = false;
      if (buffer_.empty()) {
        drained_.notify_all();
      }
      cv_.wait(lock, stop, [this] { return !buffer_.empty(); });
      if (buffer_.empty()) {
        return;  // stop requested
      }
      size_t n = std::min<size_t>(buffer_.size(), 4096);
      chunk.assign(buffer_.begin(), buffer_.begin() + n);
      buffer_.erase(buffer_.begin(), buffer_.begin() + n);
      writing_ = true;
    }
    size_t done = 0;
    while (done < chunk.size()) {
      // Wait for writability with a timeout so that a stalled reader cannot keep this thread
      // from noticing a stop request forever.
      pollfd p{fd_, POLLOUT, 0};
      int pr = ::poll(&p, 1, 200);
      if (pr == 0) {
        if (stop.stop_requested()) {
          return;
        }
        continue;
      }
      ssize_t w = ::write(fd_, chunk.data() + done, chunk.size() - done);
      if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        std::lock_guard lock(mutex_);
        broken_ = true;
        buffer_.clear();
        drained_.notify_all();
        break;
      }
      done += static_cast<size_t>(w);
    }
  }
}

}  // namespace ember::devices
