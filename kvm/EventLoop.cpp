// epoll dispatch with thread-safe, RAII registrations.
#include "kvm/EventLoop.h"

#include <time.h>

#include <array>
#include <cerrno>

#include "kvm/Log.h"

namespace ember {

namespace {
constexpr uint64_t kWakeId = 0;

uint64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());  // private constructor
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    return Error::fromErrno(Errc::Io, "epoll_create1");
  }
  loop->epoll_.reset(fd);
  loop->wake_owner_ = std::make_unique<EventFd>(EMBER_TRY(EventFd::create()));
  loop->wake_ = loop->wake_owner_.get();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (::epoll_ctl(fd, EPOLL_CTL_ADD, loop->wake_->fd(), &ev) < 0) {
    return Error::fromErrno(Errc::Io, "epoll_ctl(wake)");
  }
  return loop;
}

EventLoop::~EventLoop() {
  stop();
}

Result<EventLoop::Registration> EventLoop::add(int fd, uint32_t events, Callback callback) {
  return addEntry(fd, events, std::move(callback), false);
}

Result<EventLoop::Registration> EventLoop::addControl(int fd, uint32_t events, Callback callback) {
  return addEntry(fd, events, std::move(callback), true);
}

Result<EventLoop::Registration> EventLoop::addEntry(int fd, uint32_t events, Callback callback,
                                                    bool control) {
  std::lock_guard lock(mutex_);
  uint64_t id = next_id_++;
  epoll_event ev{};
  ev.events = masked_ && !control ? 0 : events;  // added while paused: held back like the rest
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
    return Error::fromErrno(errno == EPERM ? Errc::Unsupported : Errc::Io,
                            fmt::format("epoll_ctl(ADD, fd {})", fd));
  }
  entries_.emplace(
      id, Entry{fd, std::make_shared<Callback>(std::move(callback)), nullptr, events, control});
  return Registration(this, id);
}

EventLoop::Registration EventLoop::addPoller(std::shared_ptr<Poller> poller) {
  std::lock_guard lock(mutex_);
  uint64_t id = next_id_++;
  entries_.emplace(id, Entry{-1, nullptr, std::move(poller)});
  ++poller_count_;
  return Registration(this, id);
}

std::vector<std::shared_ptr<EventLoop::Poller>> EventLoop::pollers() {
  std::vector<std::shared_ptr<Poller>> out;
  std::lock_guard lock(mutex_);
  if (poller_count_ == 0) {
    return out;
  }
  out.reserve(poller_count_);
  for (auto& [id, e] : entries_) {
    if (e.poller) out.push_back(e.poller);
  }
  return out;
}

Result<void> EventLoop::modifyId(uint64_t id, uint32_t events) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.fd < 0) {
    return makeError(Errc::NotFound, "event loop: no fd registration {}", id);
  }
  it->second.events = events;
  if (masked_ && !it->second.control) return {};  // applied on resume
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second.fd, &ev) < 0) {
    return Error::fromErrno(Errc::Io, "epoll_ctl(MOD)");
  }
  return {};
}

void EventLoop::maskDevices(bool mask) {
  std::lock_guard lock(mutex_);
  masked_ = mask;
  for (auto& [id, e] : entries_) {
    if (e.fd < 0 || e.control) continue;
    epoll_event ev{};
    ev.events = mask ? 0 : e.events;
    ev.data.u64 = id;
    // Level-triggered: an fd that became readable while masked is reported once restored.
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, e.fd, &ev) < 0) {
      log::error("event loop: epoll_ctl(MOD, fd {}) while {}: {}", e.fd,
                 mask ? "pausing" : "resuming", std::strerror(errno));
    }
  }
}

void EventLoop::servePaused() {
  if (!pause_requested_.load(std::memory_order_acquire)) return;
  maskDevices(true);
  {
    std::lock_guard lock(pause_mutex_);
    pause_acked_ = true;
  }
  pause_cv_.notify_all();
  // Only the control fds (and the wake-up) are in epoll's ready set now; pollers are not polled.
  while (pause_requested_.load(std::memory_order_acquire) &&
         !stopping_.load(std::memory_order_acquire)) {
    waitAndDispatch(-1);
  }
  maskDevices(false);
  {
    std::lock_guard lock(pause_mutex_);
    pause_acked_ = false;
  }
  pause_cv_.notify_all();
}

void EventLoop::pause() {
  pause_requested_.store(true, std::memory_order_release);
  if (wake_ != nullptr) wake_->signal();
  std::unique_lock lock(pause_mutex_);
  pause_cv_.wait(lock, [this] { return pause_acked_ || !running_; });
}

void EventLoop::resume() {
  pause_requested_.store(false, std::memory_order_release);
  if (wake_ != nullptr) wake_->signal();
  std::unique_lock lock(pause_mutex_);
  pause_cv_.wait(lock, [this] { return !pause_acked_ || !running_; });
}

void EventLoop::removeId(uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return;
  }
  if (it->second.poller) {
    --poller_count_;
    entries_.erase(it);
    return;
  }
  // The fd may already be closed by its owner; EPOLL_CTL_DEL failing then is harmless because
  // closing it removed it from the epoll set.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  entries_.erase(it);
}

Result<void> EventLoop::Registration::setEvents(uint32_t events) {
  if (loop_ == nullptr) {
    return makeError(Errc::NotFound, "event loop registration is not active");
  }
  return loop_->modifyId(id_, events);
}

void EventLoop::Registration::reset() {
  if (loop_ != nullptr) {
    loop_->removeId(id_);
    loop_ = nullptr;
    id_ = 0;
  }
}

int EventLoop::waitAndDispatch(int timeout_ms, uint64_t* woke_ns) {
  std::array<epoll_event, 32> events{};
  int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  if (woke_ns != nullptr) {
    *woke_ns = monotonicNs();
  }
  if (n < 0) {
    if (errno != EINTR) {
      log::error("event loop: epoll_wait: {}", std::strerror(errno));
    }
    return 0;
  }
  for (int i = 0; i < n; ++i) {
    uint64_t id = events[i].data.u64;
    if (id == kWakeId) {
      wake_->consume();
      continue;
    }
    std::shared_ptr<Callback> cb;
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(id);
      if (it == entries_.end() || !it->second.callback) {
        continue;  // removed after epoll_wait returned
      }
      cb = it->second.callback;
    }
    (*cb)(events[i].events);
  }
  return n;
}

void EventLoop::runOnce(int timeout_ms) {
  std::vector<std::shared_ptr<Poller>> polled;
  if (window_.current() != 0) {
    polled = pollers();
  }
  const uint64_t t0 = window_.isAdaptive() || !polled.empty() ? monotonicNs() : 0;
  uint64_t woke = t0;
  if (!polled.empty()) {
    // Poll until something is found or the window closes. `woke` is when the round that found
    // work began: the time spent serving it is not time spent waiting for it.
    const uint64_t deadline = t0 + window_.current();
    for (auto& p : polled) p->beginPolling();
    bool found = false;
    do {
      woke = monotonicNs();
      for (auto& p : polled) found = p->poll() || found;
      found = waitAndDispatch(0) > 0 || found;
    } while (!found && woke < deadline);
    // Every poller asks to be notified again before the loop may sleep, and looks once more.
    for (auto& p : polled) found = p->endPolling() || found;
    if (found) {
      polled_.fetch_add(1, std::memory_order_relaxed);
      window_.update(woke - t0);
      return;
    }
  }
  // Not polling, or the window closed empty: sleep. An adaptive window that is shut still
  // learns from the wait how soon work follows work, and opens when it is soon enough.
  int n = waitAndDispatch(timeout_ms, &woke);
  slept_.fetch_add(1, std::memory_order_relaxed);
  if (n > 0 || (timeout_ms >= 0 && !polled.empty())) {
    window_.update(woke - t0);
  }
}

void EventLoop::start() {
  stopping_ = false;
  {
    std::lock_guard lock(pause_mutex_);
    running_ = true;
  }
  thread_ = std::thread([this] {
    thread_id_ = std::this_thread::get_id();
    while (!stopping_.load(std::memory_order_acquire)) {
      servePaused();
      if (stopping_.load(std::memory_order_acquire)) break;
      runOnce(-1);
    }
    {
      std::lock_guard lock(pause_mutex_);
      running_ = false;
      pause_acked_ = false;
    }
    pause_cv_.notify_all();
  });
}

void EventLoop::stop() {
  stopping_.store(true, std::memory_order_release);
  if (wake_ != nullptr) {
    wake_->signal();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace ember
