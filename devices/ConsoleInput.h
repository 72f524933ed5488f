// Host stdin as the guest console's input.
//
// When stdin is a terminal it is switched to raw mode for the VM's lifetime (restored by RAII,
// also on SIGINT/SIGTERM since those are handled as ordinary events) and Ctrl-A x quits ember,
// as in QEMU. When stdin is closed, /dev/null, or otherwise not pollable, there is simply no
// input. Reading pauses while the guest's receive buffer is full (bounded memory, hostile-guest
// case 36) and resumes when the device reports room.
#pragma once

#include <termios.h>

#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "kvm/EventLoop.h"
#include "kvm/Result.h"

namespace ember::devices {

class ConsoleInput {
 public:
  // Offers bytes to the device; returns how many it accepted.
  using Sink = std::function<size_t(std::span<const uint8_t>)>;
  using QuitHandler = std::function<void()>;

  ConsoleInput(EventLoop& loop, int fd, Sink sink, QuitHandler quit);
  ~ConsoleInput();
  ConsoleInput(const ConsoleInput&) = delete;
  ConsoleInput& operator=(const ConsoleInput&) = delete;

  // Starts watching the fd. Returns false (with no error) when there is nothing to watch.
  Result<bool> start();
  // The device has room again: resume reading.
  void resume();

 private:
  void onReadable(uint32_t events);
  void deliverPending();

  EventLoop& loop_;
  int fd_;
  Sink sink_;
  QuitHandler quit_;
  std::optional<termios> saved_termios_;
  std::mutex mutex_;
  EventLoop::Registration reg_;
  std::vector<uint8_t> pending_;  // read but not yet accepted by the device
  bool escape_ = false;           // the previous byte was Ctrl-A
  bool paused_ = false;
};

}  // namespace ember::devices
