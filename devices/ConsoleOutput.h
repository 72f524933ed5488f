// The guest console's path to the host's stdout that never blocks a vCPU.
//
// vCPU threads append bytes to a bounded buffer; a writer thread drains it to the output fd with
// ordinary blocking writes (so the shared stdout file description is never switched to
// O_NONBLOCK behind the user's shell). When the buffer is full because the reader is not keeping
// up, new bytes are dropped and counted (hostile-guest case 36) rather than stalling the guest.
//
// A writer that can wait (a virtio-console port, whose buffers stay in the guest's ring) asks
// hasRoom() first and is called back when the buffer has drained to half: flow control instead
// of drops. Such a writer may overshoot the capacity by what it took before asking again; bytes
// beyond twice the capacity are dropped all the same.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <thread>

namespace ember::devices {

class ConsoleOutput {
 public:
  explicit ConsoleOutput(int fd, size_t capacity = 1 << 20);
  ~ConsoleOutput();
  ConsoleOutput(const ConsoleOutput&) = delete;
  ConsoleOutput& operator=(const ConsoleOutput&) = delete;

  void write(std::span<const uint8_t> bytes);
  // Whether the buffer is below its capacity; when it is not, the room callbacks run once it has
  // drained to half.
  bool hasRoom();
  // Callbacks for hasRoom()'s writers, run on the writer thread with no lock of this object's
  // data held. removeRoomCallback() waits for a running callback to return.
  int addRoomCallback(std::function<void()> callback);
  void removeRoomCallback(int id);
  // Waits up to `timeout_ms` for the buffer to drain; returns whether it did.
  bool flush(int timeout_ms);
  uint64_t dropped() const;
  // At most `bytes` in all reach the fd (0: no limit); then one line says where the output was
  // cut, and the rest is dropped and counted (a log file the guest could otherwise grow without
  // end).
  void setTotalLimit(uint64_t bytes);
  // Whether the limit cut the output.
  bool cut() const;

 private:
  void writerLoop(std::stop_token stop);

  int fd_;
  size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable_any cv_;
  std::condition_variable drained_;
  std::deque<uint8_t> buffer_;
  bool writing_ = false;
  uint64_t dropped_ = 0;
  uint64_t total_limit_ = 0;    // 0: none
  uint64_t accepted_ = 0;       // bytes taken into the buffer so far
  bool broken_ = false;         // the output fd failed (EPIPE, EIO): discard from now on
  bool want_room_ = false;      // hasRoom() said no: call back at half
  std::mutex callbacks_mutex_;  // held while the callbacks run
  std::map<int, std::function<void()>> room_callbacks_;
  int next_callback_ = 0;
  std::jthread writer_;
};

}  // namespace ember::devices
