// The control protocol of a multiport virtio-console (virtio 1.2, 5.3.6.2 "Multiport Device
// Operation"): which messages the device sends the driver, and when, for the messages the driver
// sends. A value type without queues; VirtioConsole moves the bytes.
//
// The exchange, for each port the device has:
//   driver: DEVICE_READY(1)          device: DEVICE_ADD(port)            for every port
//   driver: PORT_READY(port, 1)      device: CONSOLE_PORT(port, 1)       for the console port
//                                            PORT_NAME(port) + the name  for a named port
//                                            PORT_OPEN(port, 1)          when the host side is open
//   driver: PORT_OPEN(port, 0|1)     the guest closed or opened the port (an application has it)
//   host side opens or closes        device: PORT_OPEN(port, 0|1)        once the port is ready
// The driver is untrusted: a message shorter than the header, an unknown event or a port the
// device does not have is refused with a reason (for a rate-limited log line), and a repeated
// DEVICE_READY or PORT_READY is answered only once until reset, so that no flood of driver
// messages can make the device queue an unbounded number of replies.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::devices {

namespace console_event {
// 5.3.6.2 struct virtio_console_control.event.
constexpr uint16_t kDeviceReady = 0, kDeviceAdd = 1, kDeviceRemove = 2, kPortReady = 3,
                   kConsolePort = 4, kResize = 5, kPortOpen = 6, kPortName = 7;
}  // namespace console_event

// struct virtio_console_control: le32 id, le16 event, le16 value; PORT_NAME's name follows it in
// the same buffer.
struct ControlMessage {
  static constexpr size_t kHeaderSize = 8;
  uint32_t id = 0;
  uint16_t event = 0;
  uint16_t value = 0;
  std::string name;

  std::vector<uint8_t> encode() const;
  bool operator==(const ControlMessage&) const = default;
};

struct ControlPort {
  std::string name;  // PORT_NAME's name; empty for none
  bool console = false;
  bool host_open = true;
};

class ConsoleControl {
 public:
  // Port ids are the indices; a port without a name that is not the console is not offered.
  explicit ConsoleControl(std::vector<ControlPort> ports);

  struct Outcome {
    std::vector<ControlMessage> replies;      // to send to the driver, in order
    std::optional<uint32_t> guest_open_port;  // PORT_OPEN from the driver: this port's guest
    bool guest_open = false;                  // side is now open (true) or closed (false)
    std::string refused;                      // why the message was ignored, if it was
  };
  // A message the driver sent on the control transmit queue.
  Outcome fromDriver(std::span<const uint8_t> message);
  // The host side of `port` opened or closed: the PORT_OPEN to send, if the driver has the port.
  std::optional<ControlMessage> hostOpen(uint32_t port, bool open);
  bool offered(uint32_t port) const;
  bool guestOpen(uint32_t port) const;
  bool ready(uint32_t port) const;
  size_t portCount() const { return ports_.size(); }
  // A device reset: the driver starts over with DEVICE_READY.
  void reset();
  // A snapshot's copy (issue 13): DEVICE_READY, and each port's PORT_READY and guest side.
  // load() reads untrusted bytes into a control of the same ports (errors are the reader's).
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  struct State {
    ControlPort config;
    bool ready = false;       // the driver answered PORT_READY(1)
    bool guest_open = false;  // the driver last said PORT_OPEN(1)
  };
  std::vector<State> ports_;
  bool device_ready_ = false;
};

}  // namespace ember::devices
