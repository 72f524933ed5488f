// The event loop: one epoll thread that serves every backend fd (ioeventfds, libaio completion
// eventfds, taps, stdin, signalfd).
//
// Lives in the bottom layer because devices at every level register fds with it. Registration
// is thread-safe (a vCPU thread registers ioeventfds when the driver sets DRIVER_OK) and RAII:
// dropping the Registration removes the fd. A callback removed from another thread may still be
// finishing its current run: callers guard their own state, and whatever the callback touches
// without a lock (such as the fd it reads) must be owned by the callback, not by the remover.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  class Registration {
   public:
    Registration() = default;
    ~Registration() { reset(); }
    Registration(Registration&& o) noexcept
        : loop_(std::exchange(o.loop_, nullptr)), id_(std::exchange(o.id_, 0)) {}
    Registration& operator=(Registration&& o) noexcept {
      if (this != &o) {
        reset();
        loop_ = std::exchange(o.loop_, nullptr);
        id_ = std::exchange(o.id_, 0);
      }
      return *this;
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

    bool active() const { return loop_ != nullptr; }
    // Changes the epoll event mask (0 pauses the fd without forgetting it).
    Result<void> setEvents(uint32_t events);
    void reset();

   private:
    friend class EventLoop;
    Registration(EventLoop* loop, uint64_t id) : loop_(loop), id_(id) {}
    EventLoop* loop_ = nullptr;
    uint64_t id_ = 0;
  };

  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();

  // Watches `fd` for `events` (EPOLLIN etc.); `callback` runs on the loop thread.
  Result<Registration> add(int fd, uint32_t events, Callback callback);

  // Runs the loop on its own thread until stop().
  void start();
  void stop();
  bool onLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }
  // Runs one round of dispatch on the calling thread (tests drive the loop by hand with this).
  void runOnce(int timeout_ms);

 private:
  EventLoop() = default;
  struct Entry {
    int fd;
    std::shared_ptr<Callback> callback;
  };
  void removeId(uint64_t id);
  Result<void> modifyId(uint64_t id, uint32_t events);

  UniqueFd epoll_;
  EventFd* wake_ = nullptr;
  std::unique_ptr<EventFd> wake_owner_;
  std::mutex mutex_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> thread_id_{};
  std::thread thread_;
};

}  // namespace ember
