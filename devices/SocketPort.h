// A virtio-console port backed by a unix socket that ember listens on (`--serial-port
// NAME=socket:PATH`, like QEMU's `-chardev socket,path=PATH,server=on`). One client at a time:
// while one is connected the port's host side is open (the guest hears PORT_OPEN 1), what the
// guest writes goes to the client, and what the client sends goes to the guest as the guest's
// buffers allow (reading pauses while they are full). Further clients are refused while one is
// connected. When the client goes away the host side closes. The socket file is created at start
// (an existing path is refused, never removed) and removed when the port is destroyed.
//
// Guest output is never allowed to block a vCPU: it is written without blocking, what the client
// has not taken yet waits in a bounded buffer sent on EPOLLOUT, and beyond the bound it is dropped
// and counted, as the console does (hostile-guest case 36).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/ConsolePort.h"
#include "kvm/EventLoop.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class SocketPort : public PortBackend {
 public:
  static constexpr size_t kMaxPendingOutput = 1 << 20;

  static Result<std::unique_ptr<SocketPort>> create(const std::string& path, EventLoop& loop);
  ~SocketPort() override;

  void attach(PortHost& host) override;
  void write(std::span<const uint8_t> bytes) override;
  void room() override;
  bool hostOpen() const override;
  uint64_t droppedBytes() const;
  const std::string& path() const { return path_; }

 private:
  SocketPort(std::string path, EventLoop& loop, UniqueFd listener, ino_t inode)
      : path_(std::move(path)), loop_(loop), listener_(std::move(listener)), inode_(inode) {}
  void onListener();
  void onClient(uint32_t events);
  void readClient();
  void flushLocked();
  void updateEventsLocked();
  void dropClient();

  std::string path_;
  EventLoop& loop_;
  UniqueFd listener_;
  ino_t inode_;  // the socket file's inode: only our own file is removed at the end
  EventLoop::Registration listener_reg_;
  PortHost* host_ = nullptr;

  // The client and what goes to it (the loop thread and write()'s callers).
  mutable std::mutex mutex_;
  std::shared_ptr<UniqueFd> client_;
  EventLoop::Registration client_reg_;
  std::deque<uint8_t> output_;
  uint64_t dropped_ = 0;
  // Input read from the client that the guest has not taken yet. Its lock is taken before the
  // device's (pushInput), never after: write() does not take it.
  std::mutex input_mutex_;
  std::vector<uint8_t> input_;
  std::atomic<bool> input_paused_{false};
};

}  // namespace ember::devices
