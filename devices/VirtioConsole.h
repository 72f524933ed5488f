// virtio-console (virtio 1.2, 5.3): the console port and, with VIRTIO_CONSOLE_F_MULTIPORT, named
// ports (5.3.6.2; the seed's virtio-serial with max_ports). Each port is a receive and a transmit
// queue; a multiport device adds the control queues and speaks the control protocol
// (ConsoleControl) so that the guest's driver learns its ports, their names (udev turns them into
// /dev/virtio-ports/NAME) and whether the host side is open.
//
//   queues: 0 port 0 receive, 1 port 0 transmit, 2 control receive, 3 control transmit,
//           then 4 + 2(p - 1) and 5 + 2(p - 1) for port p >= 1.
//
// What the guest writes to a port goes to the port's backend (ConsolePort.h); host input is only
// taken while the guest has posted receive buffers on the port, otherwise the backend pauses
// until the guest adds buffers (its room() is called then). A device with one port is the plain
// console and offers no MULTIPORT, as before. Guest writes beyond 64 KiB per buffer, and writes to
// a port without a backend, are dropped and counted. A backend that cannot keep up says so
// (PortBackend::canTake): the port's buffers then stay in the guest's ring until it has room, so
// the guest's writer waits instead of losing output; at reset (and so at power-off) what is still
// queued is written out; control messages the device has not sent
// yet wait in a queue whose size is bounded by the ports (ConsoleControl answers each driver
// message once).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/ConsoleControl.h"
#include "devices/ConsolePort.h"
#include "kvm/Log.h"
#include "virtio/QueueProcessing.h"
#include "virtio/VirtioDevice.h"

namespace ember::devices {

class VirtioConsole : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kReceiveQueue = 0, kTransmitQueue = 1;  // port 0
  static constexpr uint16_t kControlReceiveQueue = 2, kControlTransmitQueue = 3;
  static constexpr uint64_t kFeatureMultiport = 1ULL << 1;  // VIRTIO_CONSOLE_F_MULTIPORT
  static constexpr uint32_t kMaxPorts = 32;
  using OutputSink = std::function<void(std::span<const uint8_t>)>;

  struct Port {
    std::string name;  // PORT_NAME; empty for the console port
    bool console = false;
    std::unique_ptr<PortBackend> backend;  // null: the port is not offered
  };

  // The console on port 0 alone, without MULTIPORT: `output` takes what the guest writes.
  explicit VirtioConsole(OutputSink output);
  // Port p of `ports` is port p of the device (port 0: the console, or none); more than one
  // port makes it a multiport device with max_nr_ports = ports.size() (at most kMaxPorts).
  explicit VirtioConsole(std::vector<Port> ports);
  ~VirtioConsole() override;

  std::string name() const override { return "virtio-console"; }
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override;
  uint32_t configSize() const override { return 12; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  // A snapshot: the control protocol's state and the control messages not yet sent. What the
  // guest queued for output and the backend has not taken stays in its ring (it is only read
  // when taken), so it is written after the restore.
  Result<virtio::QueuePositions> saveState(StateWriter& w) override;
  void loadState(StateReader& r) override;
  // requests: chains completed either way (data and control); bytes: data bytes written out and
  // taken in; errors: rounds that ended on a broken chain or ring; dropped: guest bytes past the
  // per-buffer cap or to a port without a backend, and control messages that did not fit.
  virtio::DeviceCounters counters() const override;

  // Port 0's host input, and its room callback (the single-port console's interface).
  size_t pushInput(std::span<const uint8_t> bytes) { return pushInput(0, bytes); }
  void setInputRoomCallback(std::function<void()> cb);

  size_t pushInput(uint32_t port, std::span<const uint8_t> bytes);
  void setHostOpen(uint32_t port, bool open);
  bool guestOpen(uint32_t port) const;

  static uint16_t receiveQueue(uint32_t port) { return port == 0 ? 0 : 2 + 2 * port; }
  static uint16_t transmitQueue(uint32_t port) { return receiveQueue(port) + 1; }

 private:
  class Host;
  bool multiport() const { return ports_.size() > 1; }
  bool live(uint32_t port) const;  // active, and the port's queues exist in the negotiation
  std::optional<uint32_t> portOfQueue(uint16_t queue) const;
  void transmitLocked(uint32_t port);
  Result<void> writeChainLocked(PortBackend& backend, const GuestMemory& mem,
                                const virtio::ChainBuffers& bufs, std::vector<uint8_t>& bytes);
  void outputRoom(uint32_t port);
  void writeQueuedOutputLocked();
  void controlFromDriverLocked(std::vector<std::pair<PortBackend*, bool>>& opened);
  void sendControlLocked();
  void queueControlLocked(ControlMessage message);

  std::vector<Port> ports_;
  std::vector<std::unique_ptr<Host>> hosts_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  bool multiport_negotiated_ = false;
  ConsoleControl control_;
  std::deque<ControlMessage> pending_control_;
  log::RateLimit warnings_;
  virtio::DeviceCounters counters_;
};

}  // namespace ember::devices
