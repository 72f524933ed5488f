// A virtio-console port whose guest output goes to a file (`--serial-port NAME=file:PATH`): the
// file is created (or truncated) at start, and every byte the guest writes is written to it as it
// arrives, so that what the guest wrote is in the file when ember exits. The host side is always
// open; there is no input.
#pragma once

#include <memory>
#include <string>

#include "devices/ConsolePort.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class FilePort : public PortBackend {
 public:
  static Result<std::unique_ptr<FilePort>> create(const std::string& path);
  void write(std::span<const uint8_t> bytes) override;
  uint64_t failedBytes() const { return failed_; }

 private:
  FilePort(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
  uint64_t failed_ = 0;  // bytes a write error (ENOSPC, EIO) lost; called under the device lock
};

}  // namespace ember::devices
