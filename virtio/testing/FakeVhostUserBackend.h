// Test-only vhost-user backend on one end of a socketpair, served by a thread of its own: it
// records every message the frontend sends (request, flags, payload, the fds that came with it),
// answers the requests that have replies and, when asked, acknowledges need_reply, and can be
// told to refuse one request, to stay silent, or to hang up after a number of messages.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "kvm/LittleEndian.h"
#include "kvm/UniqueFd.h"
#include "virtio/VhostUserMessage.h"

namespace ember::virtio::testing {

class FakeVhostUserBackend {
 public:
  struct Message {
    vhost_user::Request request;
    uint32_t flags;
    std::vector<uint8_t> payload;
    std::vector<std::shared_ptr<UniqueFd>> fds;
  };
  struct Options {
    uint64_t features = 0;
    uint64_t protocol_features = 0;
    std::optional<vhost_user::Request> refuse;  // ack this one with status 1
    std::optional<vhost_user::Request> silent;  // never answer this one
    size_t hang_up_after = SIZE_MAX;            // close after this many messages
    uint32_t vring_progress = 0;                // GET_VRING_BASE: last SET_VRING_BASE + this
    bool wrong_reply = false;                   // answer with another request's id
  };

  explicit FakeVhostUserBackend(Options options) : options_(options) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    frontend_end_ = UniqueFd(sv[0]);
    backend_ = UniqueFd(sv[1]);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeVhostUserBackend() {
    ::shutdown(backend_.get(), SHUT_RDWR);
    thread_.join();
  }
  // The frontend's end of the connection (moved out once).
  UniqueFd takeFrontendEnd() { return std::move(frontend_end_); }

  std::vector<Message> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  // Waits until `n` messages arrived (or 2 s passed).
  bool waitFor(size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(2), [&] { return messages_.size() >= n; });
  }

 private:
  void reply(vhost_user::Request request, std::span<const uint8_t> payload) {
    auto bytes = vhost_user::encode(request, payload, false);
    storeLe<uint32_t>(std::span(bytes).subspan(4, 4),
                      vhost_user::kVersion | vhost_user::kFlagReply);
    if (options_.wrong_reply) {
      storeLe<uint32_t>(std::span(bytes).subspan(0, 4), 999);
    }
    (void)::send(backend_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  void serve() {
    std::map<uint32_t, uint32_t> bases;
    for (size_t count = 0;; ++count) {
      if (count == options_.hang_up_after) {
        ::shutdown(backend_.get(), SHUT_RDWR);
        return;
      }
      uint8_t head[vhost_user::kHeaderSize];
      alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * 8)] = {};
      iovec iov{head, sizeof head};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      if (::recvmsg(backend_.get(), &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) !=
          static_cast<ssize_t>(sizeof head)) {
        return;
      }
      auto h = *vhost_user::parseHeader(head);
      Message m{h.request, h.flags, std::vector<uint8_t>(h.size), {}};
      if (h.size > 0 && ::recv(backend_.get(), m.payload.data(), h.size, MSG_WAITALL) !=
                            static_cast<ssize_t>(h.size)) {
        return;
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          m.fds.push_back(std::make_shared<UniqueFd>(fd));
        }
      }
      using R = vhost_user::Request;
      if (h.request == R::SetVringBase && m.payload.size() == 8) {
        bases[loadLe<uint32_t>(std::span(m.payload).subspan(0, 4))] =
            loadLe<uint32_t>(std::span(m.payload).subspan(4, 4));
      }
      {
        std::lock_guard lock(mutex_);
        messages_.push_back(m);
      }
      cv_.notify_all();
      if (options_.silent && *options_.silent == h.request) continue;
      if (h.request == R::GetFeatures) {
        reply(h.request, vhost_user::u64Payload(options_.features));
      } else if (h.request == R::GetProtocolFeatures) {
        reply(h.request, vhost_user::u64Payload(options_.protocol_features));
      } else if (h.request == R::GetVringBase) {
        uint32_t index = loadLe<uint32_t>(std::span(m.payload).subspan(0, 4));
        reply(h.request,
              vhost_user::vringStatePayload(index, bases[index] + options_.vring_progress));
      } else if (h.flags & vhost_user::kFlagNeedReply) {
        bool refused = options_.refuse && *options_.refuse == h.request;
        reply(h.request, vhost_user::u64Payload(refused ? 1 : 0));
      }
    }
  }

  Options options_;
  UniqueFd frontend_end_, backend_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
  std::thread thread_;
};

}  // namespace ember::virtio::testing
