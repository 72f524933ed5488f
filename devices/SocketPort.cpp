// The listening unix socket behind a console port, its client, and the bytes between them.
#include "devices/SocketPort.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "kvm/Log.h"
#include "kvm/UnixSocket.h"

namespace ember::devices {

Result<std::unique_ptr<SocketPort>> SocketPort::create(const std::string& path, EventLoop& loop) {
  auto listening = listenUnixSocket(path, 1, /*nonblocking=*/true);
  if (!listening) {
    return makeError(listening.error().code, "--serial-port socket:{}", listening.error().message);
  }
  UniqueFd fd = std::move(*listening);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return Error::fromErrno(Errc::Io, fmt::format("--serial-port socket:{}: stat", path), err);
  }
  std::unique_ptr<SocketPort> port(new SocketPort(path, loop, std::move(fd), st.st_ino));
  auto* raw = port.get();
  port->listener_reg_ =
      EMBER_TRY(loop.add(raw->listener_.get(), EPOLLIN, [raw](uint32_t) { raw->onListener(); }));
  return port;
}

SocketPort::~SocketPort() {
  listener_reg_.reset();
  {
    std::lock_guard lock(mutex_);
    client_reg_.reset();
    client_.reset();
  }
  // Removed only if it is still the socket this port made.
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_ && S_ISSOCK(st.st_mode)) {
    ::unlink(path_.c_str());
  }
}

void SocketPort::attach(PortHost& host) {
  host_ = &host;
}

bool SocketPort::hostOpen() const {
  std::lock_guard lock(mutex_);
  return client_ != nullptr;
}

uint64_t SocketPort::droppedBytes() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void SocketPort::onListener() {
  UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!client.valid()) {
    return;  // EAGAIN, or the client went away already
  }
  {
    std::lock_guard lock(mutex_);
    if (client_) {
      log::info("{}: a second client connected while one is attached; refused", path_);
      return;  // closed as `client` goes
    }
    client_ = std::make_shared<UniqueFd>(std::move(client));
    auto reg = loop_.add(client_->get(), EPOLLIN | EPOLLRDHUP,
                         [this](uint32_t events) { onClient(events); });
    if (!reg) {
      log::error("{}: {}", path_, reg.error().message);
      client_.reset();
      return;
    }
    client_reg_ = std::move(*reg);
  }
  log::debug("{}: client connected", path_);
  if (host_) host_->setHostOpen(true);
}

void SocketPort::onClient(uint32_t events) {
  if (events & EPOLLOUT) {
    std::lock_guard lock(mutex_);
    flushLocked();
    updateEventsLocked();
  }
  if (events & EPOLLIN) {
    readClient();
  }
  if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
    // Whatever the client sent before it went is read above; what the guest has not taken yet
    // is dropped with the client.
    dropClient();
  }
}

void SocketPort::readClient() {
  std::shared_ptr<UniqueFd> fd;
  {
    std::lock_guard lock(mutex_);
    fd = client_;
  }
  if (!fd) return;
  std::lock_guard input_lock(input_mutex_);
  for (;;) {
    if (input_.empty()) {
      uint8_t buf[4096];
      ssize_t n = ::read(fd->get(), buf, sizeof buf);
      if (n <= 0) return;  // EAGAIN: nothing more; 0: the hang-up is seen as EPOLLRDHUP
      input_.assign(buf, buf + n);
    }
    size_t taken = host_ ? host_->pushInput(input_) : 0;
    input_.erase(input_.begin(), input_.begin() + static_cast<long>(taken));
    if (!input_.empty()) {
      // The guest's buffers are full: stop reading until room().
      input_paused_ = true;
      std::lock_guard lock(mutex_);
      updateEventsLocked();
      return;
    }
  }
}

void SocketPort::room() {
  if (!input_paused_) return;
  {
    std::lock_guard input_lock(input_mutex_);
    size_t taken = host_ ? host_->pushInput(input_) : 0;
    input_.erase(input_.begin(), input_.begin() + static_cast<long>(taken));
    if (!input_.empty()) return;  // still full
    input_paused_ = false;
  }
  std::lock_guard lock(mutex_);
  updateEventsLocked();
}

void SocketPort::write(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if (!client_) {
    dropped_ += bytes.size();  // nobody is listening
    return;
  }
  size_t sent = 0;
  if (output_.empty()) {
    ssize_t n = ::send(client_->get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      dropped_ += bytes.size();  // the client is going: the loop sees its hang-up
      return;
    }
    sent = n > 0 ? static_cast<size_t>(n) : 0;
  }
  size_t keep = std::min(bytes.size() - sent, kMaxPendingOutput - output_.size());
  output_.insert(output_.end(), bytes.begin() + static_cast<long>(sent),
                 bytes.begin() + static_cast<long>(sent + keep));
  dropped_ += bytes.size() - sent - keep;
  updateEventsLocked();
}

void SocketPort::flushLocked() {
  while (client_ && !output_.empty()) {
    uint8_t buf[4096];
    size_t n = std::min(output_.size(), sizeof buf);
    std::copy(output_.begin(), output_.begin() + static_cast<long>(n), buf);
    ssize_t sent = ::send(client_->get(), buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent <= 0) {
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        dropped_ += output_.size();
        output_.clear();
      }
      return;
    }
    output_.erase(output_.begin(), output_.begin() + sent);
  }
}

void SocketPort::updateEventsLocked() {
  if (!client_reg_.active()) return;
  uint32_t events = EPOLLRDHUP;
  if (!input_paused_) events |= EPOLLIN;
  if (!output_.empty()) events |= EPOLLOUT;
  (void)client_reg_.setEvents(events);
}

void SocketPort::dropClient() {
  {
    std::lock_guard lock(mutex_);
    if (!client_) return;
    client_reg_.reset();
    client_.reset();
    dropped_ += output_.size();
    output_.clear();
  }
  {
    std::lock_guard input_lock(input_mutex_);
    input_.clear();
    input_paused_ = false;
  }
  log::debug("{}: client disconnected", path_);
  if (host_) host_->setHostOpen(false);
}

}  // namespace ember::devices
