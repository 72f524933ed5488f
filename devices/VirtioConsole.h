// virtio-console (virtio 1.2, 5.3) with a single port: port 0's transmit queue goes to the
// host's console output, and host input (stdin) fills the guest's receive buffers.
//
// Input is only taken while the guest has posted receive buffers; otherwise pushInput() accepts
// nothing and the host side pauses until the guest adds buffers (the room callback fires then).
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "virtio/VirtioDevice.h"

namespace ember::devices {

class VirtioConsole : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kReceiveQueue = 0, kTransmitQueue = 1;
  using OutputSink = std::function<void(std::span<const uint8_t>)>;

  explicit VirtioConsole(OutputSink output);

  std::string name() const override { return "virtio-console"; }
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override { return 2; }
  uint32_t configSize() const override { return 12; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;

  // Host input for port 0; returns how many bytes the guest's posted buffers took.
  size_t pushInput(std::span<const uint8_t> bytes);
  void setInputRoomCallback(std::function<void()> cb) { on_room_ = std::move(cb); }
  // requests: chains completed either way; bytes: bytes written out and taken in; errors: rounds
  // that ended on a broken chain or ring; dropped: transmit bytes past the per-buffer cap
  // (kMaxTransmitChunk) not written out.
  virtio::DeviceCounters counters() const override;

 private:
  void transmitLocked();
  OutputSink output_;
  std::function<void()> on_room_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  virtio::DeviceCounters counters_;
};

}  // namespace ember::devices
