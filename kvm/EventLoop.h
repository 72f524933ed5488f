// The event loop: one epoll thread that serves every backend fd (ioeventfds, libaio completion
// eventfds, taps, stdin, signalfd).
//
// Lives in the bottom layer because devices at every level register fds with it. Registration
// is thread-safe (a vCPU thread registers ioeventfds when the driver sets DRIVER_OK) and RAII:
// dropping the Registration removes the fd. A callback removed from another thread may still be
// finishing its current run: callers guard their own state, and whatever the callback touches
// without a lock (such as the fd it reads) must be owned by the callback, not by the remover.
//
// Polling. Sources that can find their work without a syscall (a virtqueue's available ring)
// register a Poller. When the PollWindow is open, each round first polls them, together with a
// non-blocking look at the epoll set, until one finds work or the window closes, and only then
// sleeps in epoll_wait: a kick that comes while the loop polls costs the guest no wake-up of a
// sleeping thread. A poller may ask its source not to notify while the loop polls
// (beginPolling) and must ask again, and look once more, before the loop sleeps (endPolling):
// that is what keeps a notification from being lost between the last look and the sleep.
// Pollers run on the loop thread; one removed from another thread may still be finishing a call
// (the same rule as callbacks).
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kvm/PollWindow.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  class Poller {
   public:
    virtual ~Poller() = default;
    // The loop starts polling: the source may stop notifying (its fd would only wake the loop).
    virtual void beginPolling() = 0;
    // Serves whatever work is waiting; true if there was some.
    virtual bool poll() = 0;
    // The loop stops polling and may sleep: the source must notify again, then serve what
    // arrived before it did. True if there was some (the loop then does not sleep).
    virtual bool endPolling() = 0;
  };

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
    // Changes the epoll event mask (0 pauses the fd without forgetting it; not for pollers).
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

  // Watches `fd` for `events` (EPOLLIN etc.); `callback` runs on the loop thread. A pause()
  // holds it back; addControl's fds (signals, timers) are served while the loop is paused too.
  Result<Registration> add(int fd, uint32_t events, Callback callback);
  Result<Registration> addControl(int fd, uint32_t events, Callback callback);
  // Polls `poller` in every round while the poll window is open.
  Registration addPoller(std::shared_ptr<Poller> poller);
  // The poll window (off until set). Call before start(), or from the loop thread.
  void setPollWindow(const PollWindow& window) { window_ = window; }
  const PollWindow& pollWindow() const { return window_; }

  // What the loop has done, for the run record: rounds that found their work while polling,
  // and rounds that slept in epoll_wait.
  struct Counters {
    uint64_t polled = 0;
    uint64_t slept = 0;
  };
  Counters counters() const {
    return {polled_.load(std::memory_order_relaxed), slept_.load(std::memory_order_relaxed)};
  }

  // Runs the loop on its own thread until stop().
  void start();
  void stop();
  // Holds back every fd but the control ones and every poller, from a thread other than the
  // loop's: returns once the loop thread runs no device callback and will run none until
  // resume(). The fds stay registered, so what they signal meanwhile (kicks, completions, frames)
  // is served on resume. No-op when the loop thread is not running.
  void pause();
  void resume();
  bool paused() const { return pause_requested_.load(std::memory_order_acquire); }
  bool onLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }
  // Runs one round on the calling thread (tests drive the loop by hand with this): polls while
  // the window is open, then waits up to `timeout_ms` for events and dispatches them.
  void runOnce(int timeout_ms);

 private:
  EventLoop() = default;
  struct Entry {
    int fd;  // -1 for a poller
    std::shared_ptr<Callback> callback;
    std::shared_ptr<Poller> poller;
    uint32_t events = 0;   // what the owner asked for (masked to 0 in epoll while paused)
    bool control = false;  // served while paused
  };
  Result<Registration> addEntry(int fd, uint32_t events, Callback callback, bool control);
  // On the loop thread: masks (or restores) every fd entry that is not a control one.
  void maskDevices(bool mask);
  // On the loop thread, between rounds: parks while a pause is asked for.
  void servePaused();
  // One epoll_wait and the dispatch of what it returned; the number of events. `woke_ns`, if
  // given, is set to when epoll_wait returned (CLOCK_MONOTONIC).
  int waitAndDispatch(int timeout_ms, uint64_t* woke_ns = nullptr);
  std::vector<std::shared_ptr<Poller>> pollers();
  void removeId(uint64_t id);
  Result<void> modifyId(uint64_t id, uint32_t events);

  UniqueFd epoll_;
  EventFd* wake_ = nullptr;
  std::unique_ptr<EventFd> wake_owner_;
  std::mutex mutex_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  size_t poller_count_ = 0;  // under mutex_
  PollWindow window_;
  std::atomic<uint64_t> polled_{0}, slept_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> pause_requested_{false};
  bool masked_ = false;  // under mutex_: the device fds are masked in epoll
  std::mutex pause_mutex_;
  std::condition_variable pause_cv_;
  bool pause_acked_ = false;  // under pause_mutex_: the loop thread is in its paused rounds
  bool running_ = false;      // under pause_mutex_: the loop thread runs
  std::atomic<std::thread::id> thread_id_{};
  std::thread thread_;
};

}  // namespace ember
