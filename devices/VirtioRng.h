// virtio-rng (virtio 1.2, 5.4 "Entropy Device"): one request queue whose device-writable buffers
// are filled with bytes from getrandom(2).
#pragma once

#include <mutex>

#include "virtio/VirtioDevice.h"

namespace ember::devices {

class VirtioRng : public virtio::VirtioDevice {
 public:
  // Bytes served per request at most, so that one huge buffer cannot stall the loop.
  static constexpr uint32_t kMaxPerRequest = 64 * 1024;

  std::string name() const override { return "virtio-rng"; }
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override { return 1; }
  uint32_t configSize() const override { return 0; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  // A snapshot: nothing in flight (each request is served whole) and no state of its own.
  Result<virtio::QueuePositions> saveState(StateWriter& w) override;
  // requests: requests served; bytes: random bytes written; errors: requests getrandom(2) could
  // not fill; dropped: 0.
  virtio::DeviceCounters counters() const override;

 private:
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  virtio::DeviceCounters counters_;
};

}  // namespace ember::devices
