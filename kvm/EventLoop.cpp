// epoll dispatch with thread-safe, RAII registrations.
#include "kvm/EventLoop.h"

#include <array>
#include <cerrno>

#include "kvm/Log.h"

namespace ember {

namespace {
constexpr uint64_t kWakeId = 0;
}

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
  std::lock_guard lock(mutex_);
  uint64_t id = next_id_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
    return Error::fromErrno(errno == EPERM ? Errc::Unsupported : Errc::Io,
                            fmt::format("epoll_ctl(ADD, fd {})", fd));
  }
  entries_.emplace(id, Entry{fd, std::make_shared<Callback>(std::move(callback))});
  return Registration(this, id);
}

Result<void> EventLoop::modifyId(uint64_t id, uint32_t events) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return makeError(Errc::NotFound, "event loop: no registration {}", id);
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second.fd, &ev) < 0) {
    return Error::fromErrno(Errc::Io, "epoll_ctl(MOD)");
  }
  return {};
}

void EventLoop::removeId(uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
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

void EventLoop::runOnce(int timeout_ms) {
  std::array<epoll_event, 32> events{};
  int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0) {
    if (errno != EINTR) {
      log::error("event loop: epoll_wait: {}", std::strerror(errno));
    }
    return;
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
      if (it == entries_.end()) {
        continue;  // removed after epoll_wait returned
      }
      cb = it->second.callback;
    }
    (*cb)(events[i].events);
  }
}

void EventLoop::start() {
  stopping_ = false;
  thread_ = std::thread([this] {
    thread_id_ = std::this_thread::get_id();
    while (!stopping_.load(std::memory_order_acquire)) {
      runOnce(-1);
    }
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
