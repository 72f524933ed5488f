// A virtio-console port whose guest output goes to a ConsoleOutput (ember's stdout or stderr)
// with flow control: while the output's buffer is full the port takes no more of the guest's
// buffers (PortBackend::canTake), and the output's room callback has the device serve the port
// again once it has drained. `ember exec` carries the command's stdout and stderr this way, so a
// slow reader of ember's stdout slows the command down instead of losing its output.
#pragma once

#include "devices/ConsoleOutput.h"
#include "devices/ConsolePort.h"

namespace ember::devices {

class ConsoleOutputPort : public PortBackend {
 public:
  explicit ConsoleOutputPort(ConsoleOutput& output) : output_(output) {}
  ~ConsoleOutputPort() override {
    if (callback_ >= 0) output_.removeRoomCallback(callback_);
  }
  ConsoleOutputPort(const ConsoleOutputPort&) = delete;
  ConsoleOutputPort& operator=(const ConsoleOutputPort&) = delete;

  void attach(PortHost& host) override {
    callback_ = output_.addRoomCallback([&host] { host.outputRoom(); });
  }
  void write(std::span<const uint8_t> bytes) override { output_.write(bytes); }
  bool canTake() override { return output_.hasRoom(); }

 private:
  ConsoleOutput& output_;
  int callback_ = -1;
};

}  // namespace ember::devices
