// A file or a named pipe that gets one line at a time without ever blocking the writer:
// Firecracker's metrics file (PUT /metrics {"metrics_path": ...}: JSON objects, on PUT /actions
// FlushMetrics and periodically) and its log file (PUT /logger {"log_path": ...}). Opened when
// the PUT arrives, so that a path that cannot be written is the client's 400; a pipe is opened
// without blocking (a FIFO nobody reads is refused then), and a line the pipe has no room for is
// dropped and counted rather than blocking the API thread, a vCPU or the event loop.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::vmm::api {

class LineFile {
 public:
  // FIELD names the path in errors, as the client wrote it ("metrics: metrics_path").
  static Result<LineFile> open(const std::string& path, std::string_view field);
  LineFile(LineFile&& other) noexcept
      : fd_(std::move(other.fd_)), path_(std::move(other.path_)), dropped_(other.dropped_) {}

  // One line (LINE and a newline), whole or not at all. From any thread.
  Result<void> writeLine(std::string_view line);
  const std::string& path() const { return path_; }
  uint64_t dropped() const;

 private:
  LineFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  mutable std::mutex mutex_;
  UniqueFd fd_;
  std::string path_;
  uint64_t dropped_ = 0;
};

}  // namespace ember::vmm::api
