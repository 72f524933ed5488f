// A virtio-console port whose guest output goes to a file (`--serial-port NAME=file:PATH`): the
// file is created (or truncated) at start, and every byte the guest writes is written to it as it
// arrives, so that what the guest wrote is in the file when ember exits. The host side is always
// open; there is no input. With a limit, bytes past the first `limit` are dropped and counted
// (ember exec's status port: ember reads no more of it, and the guest must not fill the disk).
#pragma once

#include <memory>
#include <string>

#include "devices/ConsolePort.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class FilePort : public PortBackend {
 public:
  // `limit`: the most bytes the file takes (0: no limit).
  static Result<std::unique_ptr<FilePort>> create(const std::string& path, uint64_t limit = 0);
  void write(std::span<const uint8_t> bytes) override;
  uint64_t failedBytes() const { return failed_; }
  uint64_t droppedBytes() const { return dropped_; }  // past the limit

 private:
  FilePort(std::string path, UniqueFd fd, uint64_t limit)
      : path_(std::move(path)), fd_(std::move(fd)), limit_(limit) {}
  std::string path_;
  UniqueFd fd_;
  uint64_t limit_;
  // Called under the device lock:
  uint64_t written_ = 0;  // bytes taken towards the limit
  uint64_t failed_ = 0;   // bytes a write error (ENOSPC, EIO) lost
  uint64_t dropped_ = 0;  // bytes past the limit
};

}  // namespace ember::devices
