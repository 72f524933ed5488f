// ConsoleControl, the multiport console's control protocol (virtio 1.2, 5.3.6.2) without queues:
// the answers to DEVICE_READY and PORT_READY, the console and named ports, the host and guest
// open state, reset, and what a hostile driver may send (short messages, unknown events, ports
// the device lacks, floods of repeats).
#include <gtest/gtest.h>

#include "devices/ConsoleControl.h"

namespace ember::devices {
namespace {

using namespace console_event;

std::vector<uint8_t> msg(uint32_t id, uint16_t event, uint16_t value) {
  return ControlMessage{id, event, value, {}}.encode();
}

ConsoleControl threePorts() {
  // Port 0: the console; port 1: not offered; port 2: "org.ember.out", host side closed.
  return ConsoleControl({{"", true, true}, {"", false, false}, {"org.ember.out", false, false}});
}

TEST(ConsoleControl, EncodesTheControlStructureLittleEndianWithTheNameAfterIt) {
  auto b = ControlMessage{0x01020304, kPortName, 1, "ab"}.encode();
  EXPECT_EQ(b, (std::vector<uint8_t>{4, 3, 2, 1, 7, 0, 1, 0, 'a', 'b'}));
}

TEST(ConsoleControl, DeviceReadyAddsEveryOfferedPort) {
  auto c = threePorts();
  auto out = c.fromDriver(msg(0, kDeviceReady, 1));
  EXPECT_TRUE(out.refused.empty());
  EXPECT_EQ(out.replies,
            (std::vector<ControlMessage>{{0, kDeviceAdd, 1, {}}, {2, kDeviceAdd, 1, {}}}));
  EXPECT_TRUE(c.fromDriver(msg(0, kDeviceReady, 1)).replies.empty()) << "answered once";
  EXPECT_FALSE(c.fromDriver(msg(0, kDeviceReady, 0)).refused.empty());
}

TEST(ConsoleControl, PortReadyNamesThePortAndSaysWhetherTheHostIsOpen) {
  auto c = threePorts();
  c.fromDriver(msg(0, kDeviceReady, 1));
  EXPECT_EQ(c.fromDriver(msg(0, kPortReady, 1)).replies,
            (std::vector<ControlMessage>{{0, kConsolePort, 1, {}}, {0, kPortOpen, 1, {}}}));
  EXPECT_EQ(c.fromDriver(msg(2, kPortReady, 1)).replies,
            (std::vector<ControlMessage>{{2, kPortName, 1, "org.ember.out"}}));
  EXPECT_TRUE(c.ready(2));
  EXPECT_TRUE(c.fromDriver(msg(2, kPortReady, 1)).replies.empty()) << "answered once";
  // The host side opens now that the driver has the port: PORT_OPEN 1; then closes.
  EXPECT_EQ(c.hostOpen(2, true), (ControlMessage{2, kPortOpen, 1, {}}));
  EXPECT_EQ(c.hostOpen(2, true), std::nullopt) << "no change, nothing to say";
  EXPECT_EQ(c.hostOpen(2, false), (ControlMessage{2, kPortOpen, 0, {}}));
}

TEST(ConsoleControl, HostOpenBeforePortReadyIsToldByPortReady) {
  auto c = threePorts();
  EXPECT_EQ(c.hostOpen(2, true), std::nullopt);
  c.fromDriver(msg(0, kDeviceReady, 1));
  EXPECT_EQ(
      c.fromDriver(msg(2, kPortReady, 1)).replies,
      (std::vector<ControlMessage>{{2, kPortName, 1, "org.ember.out"}, {2, kPortOpen, 1, {}}}));
}

TEST(ConsoleControl, GuestOpenAndClose) {
  auto c = threePorts();
  c.fromDriver(msg(0, kDeviceReady, 1));
  c.fromDriver(msg(2, kPortReady, 1));
  auto opened = c.fromDriver(msg(2, kPortOpen, 1));
  EXPECT_EQ(opened.guest_open_port, 2u);
  EXPECT_TRUE(opened.guest_open);
  EXPECT_TRUE(c.guestOpen(2));
  auto closed = c.fromDriver(msg(2, kPortOpen, 0));
  EXPECT_EQ(closed.guest_open_port, 2u);
  EXPECT_FALSE(closed.guest_open);
  EXPECT_FALSE(c.guestOpen(2));
}

TEST(ConsoleControl, ResetStartsTheExchangeOver) {
  auto c = threePorts();
  c.fromDriver(msg(0, kDeviceReady, 1));
  c.fromDriver(msg(0, kPortReady, 1));
  c.fromDriver(msg(0, kPortOpen, 1));
  c.reset();
  EXPECT_FALSE(c.ready(0));
  EXPECT_FALSE(c.guestOpen(0));
  EXPECT_EQ(c.fromDriver(msg(0, kDeviceReady, 1)).replies.size(), 2u);
}

TEST(Hostile, ConsoleControlMessagesTheDeviceDoesNotExpect) {
  auto c = threePorts();
  c.fromDriver(msg(0, kDeviceReady, 1));
  auto short_one = c.fromDriver(std::vector<uint8_t>{1, 2, 3});
  EXPECT_NE(short_one.refused.find("shorter"), std::string::npos);
  for (uint16_t event : {kDeviceAdd, kDeviceRemove, kConsolePort, kResize, kPortName,
                         static_cast<uint16_t>(8), static_cast<uint16_t>(0xffff)}) {
    auto out = c.fromDriver(msg(0, event, 1));
    EXPECT_NE(out.refused.find("unknown control event"), std::string::npos) << event;
    EXPECT_TRUE(out.replies.empty());
  }
  for (uint32_t id : {1u, 3u, 32u, 0xffffffffu}) {  // not offered, or not a port at all
    auto ready = c.fromDriver(msg(id, kPortReady, 1));
    EXPECT_NE(ready.refused.find("does not have"), std::string::npos) << id;
    EXPECT_TRUE(ready.replies.empty());
    EXPECT_FALSE(c.fromDriver(msg(id, kPortOpen, 1)).guest_open_port.has_value());
  }
  EXPECT_EQ(c.hostOpen(0xffffffffu, true), std::nullopt);
  // A flood of repeated PORT_READY gets one answer in all.
  size_t replies = 0;
  for (int i = 0; i < 10000; ++i) replies += c.fromDriver(msg(2, kPortReady, 1)).replies.size();
  EXPECT_EQ(replies, 1u);
}

// A snapshot's control state (issue 13) loads only into a console with the same ports.
TEST(ConsoleControl, Hostile_SavedStateLoadsOnlyForTheSamePorts) {
  ConsoleControl two({{"", true, true}, {"log", false, true}});
  (void)two.fromDriver(ControlMessage{0, console_event::kDeviceReady, 1, ""}.encode());
  (void)two.fromDriver(ControlMessage{1, console_event::kPortReady, 1, ""}.encode());
  (void)two.fromDriver(ControlMessage{1, console_event::kPortOpen, 1, ""}.encode());
  StateWriter w;
  two.save(w);
  ConsoleControl same({{"", true, true}, {"log", false, true}});
  StateReader r(w.data(), "console");
  same.load(r);
  ASSERT_TRUE(r.finish().ok());
  EXPECT_TRUE(same.ready(1));
  EXPECT_TRUE(same.guestOpen(1));
  ConsoleControl three({{"", true, true}, {"a", false, true}, {"b", false, true}});
  StateReader r3(w.data(), "console");
  three.load(r3);
  EXPECT_FALSE(r3.finish().ok());
  EXPECT_FALSE(three.ready(1)) << "nothing loaded from a refused state";
}

}  // namespace
}  // namespace ember::devices
