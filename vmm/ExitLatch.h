// The machine's single exit decision: the first requester (guest power-off, debug exit, a crash,
// a signal) sets the status and reason; the main thread waits for it.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "devices/VmControl.h"

namespace ember::vmm {

struct ExitDecision {
  int status;
  std::string reason;
};

class ExitLatch : public devices::VmControl {
 public:
  void requestExit(int status, std::string reason) override {
    {
      std::lock_guard lock(mutex_);
      if (decision_) {
        return;
      }
      decision_ = ExitDecision{status, std::move(reason)};
    }
    cv_.notify_all();
  }
  ExitDecision wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return decision_.has_value(); });
    return *decision_;
  }
  bool decided() const {
    std::lock_guard lock(mutex_);
    return decision_.has_value();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<ExitDecision> decision_;
};

}  // namespace ember::vmm
