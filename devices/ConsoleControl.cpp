// The multiport console's control protocol.
#include "devices/ConsoleControl.h"

#include <fmt/format.h>

#include "kvm/LittleEndian.h"

namespace ember::devices {

using namespace console_event;

std::vector<uint8_t> ControlMessage::encode() const {
  std::vector<uint8_t> out(kHeaderSize + name.size());
  storeLe<uint32_t>(std::span(out).subspan(0, 4), id);
  storeLe<uint16_t>(std::span(out).subspan(4, 2), event);
  storeLe<uint16_t>(std::span(out).subspan(6, 2), value);
  std::copy(name.begin(), name.end(), out.begin() + kHeaderSize);
  return out;
}

ConsoleControl::ConsoleControl(std::vector<ControlPort> ports) {
  for (auto& p : ports) {
    ports_.push_back(State{std::move(p)});
  }
}

bool ConsoleControl::offered(uint32_t port) const {
  return port < ports_.size() && (ports_[port].config.console || !ports_[port].config.name.empty());
}

bool ConsoleControl::guestOpen(uint32_t port) const {
  return port < ports_.size() && ports_[port].guest_open;
}

bool ConsoleControl::ready(uint32_t port) const {
  return port < ports_.size() && ports_[port].ready;
}

ConsoleControl::Outcome ConsoleControl::fromDriver(std::span<const uint8_t> message) {
  Outcome out;
  if (message.size() < ControlMessage::kHeaderSize) {
    out.refused =
        fmt::format("control message of {} bytes, shorter than its header", message.size());
    return out;
  }
  uint32_t id = loadLe<uint32_t>(message.subspan(0, 4));
  uint16_t event = loadLe<uint16_t>(message.subspan(4, 2));
  uint16_t value = loadLe<uint16_t>(message.subspan(6, 2));
  switch (event) {
    case kDeviceReady:
      if (value != 1) {
        out.refused = "the driver failed to set up the device (DEVICE_READY 0)";
      } else if (!device_ready_) {
        device_ready_ = true;
        for (uint32_t p = 0; p < ports_.size(); ++p) {
          if (offered(p)) out.replies.push_back(ControlMessage{p, kDeviceAdd, 1, {}});
        }
      }
      return out;
    case kPortReady:
    case kPortOpen:
      break;
    default:
      out.refused = fmt::format("unknown control event {} from the driver", event);
      return out;
  }
  if (!offered(id)) {
    out.refused =
        fmt::format("control event {} for port {}, which the device does not have", event, id);
    return out;
  }
  State& s = ports_[id];
  if (event == kPortOpen) {
    s.guest_open = value != 0;
    out.guest_open_port = id;
    out.guest_open = s.guest_open;
    return out;
  }
  if (value != 1) {
    out.refused = fmt::format("the driver failed to set up port {} (PORT_READY 0)", id);
    return out;
  }
  if (s.ready) {
    return out;  // answered once already
  }
  s.ready = true;
  if (s.config.console) {
    out.replies.push_back(ControlMessage{id, kConsolePort, 1, {}});
  }
  if (!s.config.name.empty()) {
    out.replies.push_back(ControlMessage{id, kPortName, 1, s.config.name});
  }
  if (s.config.host_open) {
    out.replies.push_back(ControlMessage{id, kPortOpen, 1, {}});
  }
  return out;
}

std::optional<ControlMessage> ConsoleControl::hostOpen(uint32_t port, bool open) {
  if (port >= ports_.size() || ports_[port].config.host_open == open) {
    return std::nullopt;
  }
  ports_[port].config.host_open = open;
  if (!ports_[port].ready) {
    return std::nullopt;  // PORT_READY will tell the driver
  }
  return ControlMessage{port, kPortOpen, static_cast<uint16_t>(open ? 1 : 0), {}};
}

void ConsoleControl::reset() {
  device_ready_ = false;
  for (auto& s : ports_) {
    s.ready = false;
    s.guest_open = false;
  }
}

void ConsoleControl::save(StateWriter& w) const {
  w.boolean(device_ready_);
  w.u32(static_cast<uint32_t>(ports_.size()));
  for (const auto& s : ports_) {
    w.boolean(s.ready);
    w.boolean(s.guest_open);
  }
}

void ConsoleControl::load(StateReader& r) {
  bool device_ready = r.boolean("DEVICE_READY");
  uint32_t n = r.count("ports", 1024);
  if (r.ok() && n != ports_.size()) {
    r.fail("ports", fmt::format("{}, but this console has {}", n, ports_.size()));
  }
  std::vector<std::pair<bool, bool>> loaded;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    bool ready = r.boolean("PORT_READY");
    bool open = r.boolean("guest open");
    loaded.emplace_back(ready, open);
  }
  if (!r.ok()) return;
  device_ready_ = device_ready;
  for (size_t i = 0; i < loaded.size(); ++i) {
    ports_[i].ready = loaded[i].first;
    ports_[i].guest_open = loaded[i].second;
  }
}

}  // namespace ember::devices
