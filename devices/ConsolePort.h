// The host side of a virtio-console port, and what the device offers it.
//
// A VirtioConsole port's backend receives what the guest writes to the port and may feed host
// input into it; it says whether the host side is open (a socket with a client, say), which the
// device reports to the guest with PORT_OPEN (virtio 1.2, 5.3.6.2).
//
// Threads and locks: write() is called with the device's lock held, from a vCPU thread or the
// event loop. PortHost's calls take the device's lock, so a backend must not hold a lock of its
// own that write() takes while it calls them, and must not call them from inside write().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

namespace ember::devices {

// What the device offers a port's backend; safe from any thread.
class PortHost {
 public:
  virtual ~PortHost() = default;
  // Host input for the guest; returns how many bytes the guest's posted buffers took (the rest
  // waits for room()).
  virtual size_t pushInput(std::span<const uint8_t> bytes) = 0;
  // The host side opened or closed (the guest hears PORT_OPEN once its driver has the port).
  virtual void setHostOpen(bool open) = 0;
  // The backend can take guest output again (after canTake() said no): the device serves the
  // port's transmit queue.
  virtual void outputRoom() = 0;
};

class PortBackend {
 public:
  virtual ~PortBackend() = default;
  // Once, when the device is built: the port's way back into the device.
  virtual void attach(PortHost& host) { (void)host; }
  // Bytes the guest wrote to the port.
  virtual void write(std::span<const uint8_t> bytes) = 0;
  // Whether the backend takes more guest output now (asked before each of the guest's buffers,
  // with the device's lock held). No leaves the guest's buffers in its ring, unused, so that the
  // guest's writer waits instead of its output being dropped, until the backend calls
  // PortHost::outputRoom(). Called with the device's lock held.
  virtual bool canTake() { return true; }
  // The guest posted receive buffers: input may flow again.
  virtual void room() {}
  // The guest opened (an application has the port) or closed it.
  virtual void guestOpen(bool open) { (void)open; }
  // Whether the host side is open when the guest first asks.
  virtual bool hostOpen() const { return true; }
};

// A port that writes what the guest sends to a function (stdout, a file, a test's buffer) and
// passes host input on when asked: the console and stdio ports.
class StreamPort : public PortBackend {
 public:
  using Output = std::function<void(std::span<const uint8_t>)>;
  explicit StreamPort(Output output) : output_(std::move(output)) {}

  // Host input for the guest (0 until the device is built).
  size_t pushInput(std::span<const uint8_t> bytes) { return host_ ? host_->pushInput(bytes) : 0; }
  void setRoomCallback(std::function<void()> on_room) { on_room_ = std::move(on_room); }

  void attach(PortHost& host) override { host_ = &host; }
  void write(std::span<const uint8_t> bytes) override {
    if (output_) output_(bytes);
  }
  void room() override {
    if (on_room_) on_room_();
  }

 private:
  Output output_;
  std::function<void()> on_room_;
  PortHost* host_ = nullptr;
};

}  // namespace ember::devices
