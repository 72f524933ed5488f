// The machine's single exit decision: the first requester (guest power-off, debug exit, a crash,
// a signal) sets it; the main thread waits for it.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>

#include "devices/VmControl.h"

namespace ember::vmm {

class ExitLatch : public devices::VmControl {
 public:
  void requestExit(devices::ExitRequest request) override {
    {
      std::lock_guard lock(mutex_);
      if (decision_) {
        return;
      }
      decision_ = std::move(request);
    }
    cv_.notify_all();
  }
  devices::ExitRequest wait() {
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
  std::optional<devices::ExitRequest> decision_;
};

}  // namespace ember::vmm
