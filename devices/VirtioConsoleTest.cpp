// VirtioConsole through the virtio-pci transport: transmit to the output sink, host input into
// the guest's receive buffers (and none without buffers), and a broken transmit chain; then the
// multiport device (5.3.6.2): its queues and config, the control exchange that names the ports,
// data on named ports, host and guest open and close, hostile control messages, and a driver
// that does not negotiate MULTIPORT.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "devices/VirtioConsole.h"
#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::devices {
namespace {

using namespace virtio::testing;
namespace status = virtio::status;

struct ConsoleRig {
  ConsoleRig() : h(make()), rx(h.mem, 16, 0x10000), tx(h.mem, 16, 0x60000) {}
  std::unique_ptr<virtio::VirtioDevice> make() {
    auto c = std::make_unique<VirtioConsole>(
        [this](std::span<const uint8_t> b) { output.append(b.begin(), b.end()); });
    c->setInputRoomCallback([this] { ++room; });
    console = c.get();
    return c;
  }
  void init() { h.modernInit(virtio::feature::kVersion1, {rx.geometry(), tx.geometry()}); }

  std::string output;
  int room = 0;
  VirtioConsole* console = nullptr;
  TransportHarness h;
  MockDriver rx, tx;
};

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};  // text as bytes
}

TEST(VirtioConsole, TransmitReachesTheOutput) {
  ConsoleRig r;
  r.init();
  uint64_t a = r.tx.alloc(6), b = r.tx.alloc(6);
  writeBytes(r.h.mem, a, bytes("hello "));
  writeBytes(r.h.mem, b, bytes("world!"));
  r.tx.post({{a, 6, false}, {b, 6, false}});
  r.h.kickModern(1);
  EXPECT_EQ(r.output, "hello world!");
  auto used = r.tx.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 0u);
}

TEST(VirtioConsole, InputFillsReceiveBuffersOnly) {
  ConsoleRig r;
  EXPECT_EQ(r.console->pushInput(bytes("early")), 0u) << "not active yet";
  r.init();
  EXPECT_GE(r.room, 1) << "activation announces room";
  EXPECT_EQ(r.console->pushInput(bytes("abc")), 0u) << "no receive buffers yet";
  uint64_t a = r.rx.alloc(4), b = r.rx.alloc(4);
  r.rx.post({{a, 4, true}});
  r.rx.post({{b, 4, true}});
  int room_before = r.room;
  r.h.kickModern(0);
  EXPECT_EQ(r.room, room_before + 1);
  EXPECT_EQ(r.console->pushInput(bytes("0123456789")), 8u);
  auto used = r.rx.drainUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 4u);
  EXPECT_EQ(used[1].len, 4u);
  EXPECT_EQ(readBytes(r.h.mem, a, 4), (std::vector<uint8_t>{'0', '1', '2', '3'}));
  EXPECT_EQ(readBytes(r.h.mem, b, 4), (std::vector<uint8_t>{'4', '5', '6', '7'}));
  EXPECT_EQ(r.console->pushInput(bytes("89")), 0u);
  EXPECT_TRUE(r.h.intx->level());
}

TEST(Hostile, Case11_BrokenConsoleTransmitChain) {
  ConsoleRig r;
  r.init();
  uint64_t a = r.tx.alloc(8);
  r.tx.writeDesc(0, a, 8, virtio::desc::kWrite | virtio::desc::kNext, 1);
  r.tx.writeDesc(1, a, 8, 0, 0);
  r.tx.publish(0);
  log::ScopedLogCapture logs;
  r.h.kickModern(1);
  auto used = r.tx.popUsed();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 0u);
  EXPECT_TRUE(r.h.modernStatus() & status::kNeedsReset);
  EXPECT_TRUE(logs.contains("virtio-console")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(r.output.empty());
}

// A port backend that records what the device told it.
struct RecordingPort : PortBackend {
  explicit RecordingPort(bool open) : open(open) {}
  void attach(PortHost& h) override { host = &h; }
  void write(std::span<const uint8_t> b) override { written.append(b.begin(), b.end()); }
  void room() override { ++rooms; }
  void guestOpen(bool o) override { guest_open.push_back(o); }
  bool hostOpen() const override { return open; }
  bool canTake() override { return take; }
  bool open;
  bool take = true;  // false: a backend whose output is full
  PortHost* host = nullptr;
  std::string written;
  int rooms = 0;
  std::vector<bool> guest_open;
};

// Port 0 the console, port 1 "org.ember.a" (host open), port 2 "org.ember.b" (host closed).
struct MultiportRig {
  static constexpr uint16_t kQueues = 8;
  MultiportRig() : h(make()) {
    for (uint16_t q = 0; q < kQueues; ++q) {
      drivers.emplace_back(std::make_unique<MockDriver>(h.mem, 32, 0x8000ULL * q));
      drivers.back()->setArena(0x40000 + 0x10000ULL * q, 0x40000 + 0x10000ULL * (q + 1));
    }
  }
  std::unique_ptr<virtio::VirtioDevice> make() {
    std::vector<VirtioConsole::Port> ports;
    ports.push_back(VirtioConsole::Port{"", true, std::make_unique<StreamPort>([this](auto b) {
                                          out0.append(b.begin(), b.end());
                                        })});
    auto a = std::make_unique<RecordingPort>(true);
    auto b = std::make_unique<RecordingPort>(false);
    port_a = a.get();
    port_b = b.get();
    ports.push_back(VirtioConsole::Port{"org.ember.a", false, std::move(a)});
    ports.push_back(VirtioConsole::Port{"org.ember.b", false, std::move(b)});
    auto c = std::make_unique<VirtioConsole>(std::move(ports));
    console = c.get();
    return c;
  }
  MockDriver& q(uint16_t i) { return *drivers[i]; }
  void init(bool multiport = true) {
    std::vector<virtio::QueueGeometry> g;
    for (auto& d : drivers) g.push_back(d->geometry());
    h.modernInit(virtio::feature::kVersion1 | (multiport ? VirtioConsole::kFeatureMultiport : 0),
                 g);
  }
  // Posts `n` control receive buffers.
  void postControlBuffers(int n) {
    for (int i = 0; i < n; ++i) {
      uint64_t a = q(2).alloc(64);
      control_rx[q(2).post({{a, 64, true}})] = a;
    }
    h.kickModern(VirtioConsole::kControlReceiveQueue);
  }
  // Posts `text` as one guest buffer on transmit queue `queue` (not kicked).
  void postText(uint16_t queue, const std::string& text) {
    uint64_t a = q(queue).alloc(text.size());
    writeBytes(h.mem, a, bytes(text));
    q(queue).post({{a, static_cast<uint32_t>(text.size()), false}});
  }
  void sendControl(uint32_t id, uint16_t event, uint16_t value) {
    auto m = ControlMessage{id, event, value, {}}.encode();
    uint64_t a = q(3).alloc(m.size());
    writeBytes(h.mem, a, m);
    q(3).post({{a, static_cast<uint32_t>(m.size()), false}});
    h.kickModern(VirtioConsole::kControlTransmitQueue);
  }
  // The control messages the device has written since the last call.
  std::vector<ControlMessage> received() {
    std::vector<ControlMessage> out;
    for (auto used : q(2).drainUsed()) {
      if (used.len < ControlMessage::kHeaderSize) {
        out.push_back(ControlMessage{0xdead, 0xdead, 0, {}});
        continue;
      }
      auto b = readBytes(h.mem, control_rx.at(static_cast<uint16_t>(used.id)), used.len);
      ControlMessage m{loadLe<uint32_t>(std::span(b).subspan(0, 4)),
                       loadLe<uint16_t>(std::span(b).subspan(4, 2)),
                       loadLe<uint16_t>(std::span(b).subspan(6, 2)),
                       std::string(b.begin() + 8, b.end())};
      out.push_back(m);
    }
    return out;
  }
  // DEVICE_READY and PORT_READY for every port, as Linux's driver does.
  void bringUp() {
    postControlBuffers(16);
    sendControl(0, console_event::kDeviceReady, 1);
    for (uint32_t p = 0; p < 3; ++p) sendControl(p, console_event::kPortReady, 1);
  }

  std::string out0;
  RecordingPort* port_a = nullptr;
  RecordingPort* port_b = nullptr;
  VirtioConsole* console = nullptr;
  TransportHarness h;
  std::vector<std::unique_ptr<MockDriver>> drivers;
  std::map<uint16_t, uint64_t> control_rx;  // head -> buffer
};

using namespace console_event;

TEST(VirtioConsoleMultiport, QueuesFeaturesAndMaxPorts) {
  MultiportRig r;
  EXPECT_EQ(r.console->queueCount(), 8);
  EXPECT_TRUE(r.console->features() & VirtioConsole::kFeatureMultiport);
  EXPECT_EQ(r.h.modernRead(virtio::VirtioPciTransport::kDeviceOffset + 4, 4), 3u);
  EXPECT_EQ(VirtioConsole::receiveQueue(0), 0);
  EXPECT_EQ(VirtioConsole::transmitQueue(0), 1);
  EXPECT_EQ(VirtioConsole::receiveQueue(1), 4);
  EXPECT_EQ(VirtioConsole::transmitQueue(2), 7);
  ConsoleRig single;
  EXPECT_FALSE(single.console->features() & VirtioConsole::kFeatureMultiport);
  EXPECT_EQ(single.console->queueCount(), 2);
}

TEST(VirtioConsoleMultiport, TheControlExchangeNamesThePorts) {
  MultiportRig r;
  r.init();
  r.postControlBuffers(16);
  r.sendControl(0, kDeviceReady, 1);
  EXPECT_EQ(r.received(),
            (std::vector<ControlMessage>{
                {0, kDeviceAdd, 1, {}}, {1, kDeviceAdd, 1, {}}, {2, kDeviceAdd, 1, {}}}));
  r.sendControl(0, kPortReady, 1);
  EXPECT_EQ(r.received(),
            (std::vector<ControlMessage>{{0, kConsolePort, 1, {}}, {0, kPortOpen, 1, {}}}));
  r.sendControl(1, kPortReady, 1);
  EXPECT_EQ(r.received(),
            (std::vector<ControlMessage>{{1, kPortName, 1, "org.ember.a"}, {1, kPortOpen, 1, {}}}));
  r.sendControl(2, kPortReady, 1);
  EXPECT_EQ(r.received(), (std::vector<ControlMessage>{{2, kPortName, 1, "org.ember.b"}}))
      << "the host side of port 2 is closed";
  EXPECT_EQ(r.q(3).drainUsed().size(), 4u) << "every driver message returned";
}

TEST(VirtioConsoleMultiport, HostOpenWaitsForControlBuffersAndKeepsOnlyTheLatest) {
  MultiportRig r;
  r.init();
  r.postControlBuffers(6);  // DEVICE_ADD x3, CONSOLE_PORT, PORT_OPEN(0), PORT_NAME(1)
  r.sendControl(0, kDeviceReady, 1);
  r.sendControl(0, kPortReady, 1);
  r.sendControl(1, kPortReady, 1);  // PORT_NAME(1) fits, PORT_OPEN(1) waits
  r.sendControl(2, kPortReady, 1);  // PORT_NAME(2) waits
  EXPECT_EQ(r.received().size(), 6u);
  r.port_b->host->setHostOpen(true);
  r.port_b->host->setHostOpen(false);
  r.port_b->host->setHostOpen(true);  // only the last state reaches the driver
  r.postControlBuffers(8);
  EXPECT_EQ(r.received(),
            (std::vector<ControlMessage>{
                {1, kPortOpen, 1, {}}, {2, kPortName, 1, "org.ember.b"}, {2, kPortOpen, 1, {}}}));
  r.port_b->host->setHostOpen(false);
  EXPECT_EQ(r.received(), (std::vector<ControlMessage>{{2, kPortOpen, 0, {}}}));
}

TEST(VirtioConsoleMultiport, DataOnNamedPortsAndTheGuestOpeningThem) {
  MultiportRig r;
  r.init();
  r.bringUp();
  // Guest -> host on port 1 (transmit queue 5), and on the console.
  r.postText(5, "hello");
  r.h.kickModern(5);
  EXPECT_EQ(r.port_a->written, "hello");
  r.postText(1, "con");
  r.h.kickModern(1);
  EXPECT_EQ(r.out0, "con");
  // Host -> guest on port 2 (receive queue 6): only into posted buffers.
  EXPECT_EQ(r.port_b->host->pushInput(bytes("in")), 0u);
  uint64_t b = r.q(6).alloc(8);
  r.q(6).post({{b, 8, true}});
  int rooms = r.port_b->rooms;
  r.h.kickModern(6);
  EXPECT_EQ(r.port_b->rooms, rooms + 1);
  EXPECT_EQ(r.port_b->host->pushInput(bytes("in")), 2u);
  EXPECT_EQ(readBytes(r.h.mem, b, 2), (std::vector<uint8_t>{'i', 'n'}));
  // The guest opens and closes port 2.
  r.sendControl(2, kPortOpen, 1);
  r.sendControl(2, kPortOpen, 0);
  EXPECT_EQ(r.port_b->guest_open, (std::vector<bool>{true, false}));
  EXPECT_FALSE(r.console->guestOpen(2));
}

// Flow control: while a port's backend cannot take output, the guest's buffers stay in its ring
// (not used, so its writer waits); outputRoom() has them written and used, in order; what is
// still queued at a reset is written out without touching guest memory.
TEST(VirtioConsoleMultiport, ABackendWithoutRoomLeavesTheGuestsBuffersQueued) {
  MultiportRig r;
  r.init();
  r.bringUp();
  r.port_a->take = false;
  r.postText(5, "one ");
  r.postText(5, "two ");
  r.h.kickModern(5);
  EXPECT_EQ(r.port_a->written, "");
  EXPECT_FALSE(r.q(5).popUsed()) << "a buffer was used while the backend had no room";
  r.port_a->take = true;
  r.port_a->host->outputRoom();
  EXPECT_EQ(r.port_a->written, "one two ");
  EXPECT_EQ(r.q(5).drainUsed().size(), 2u);

  r.port_a->take = false;
  r.postText(5, "last\n");
  r.h.kickModern(5);
  EXPECT_EQ(r.port_a->written, "one two ");
  r.h.commonWrite(virtio::common::kDeviceStatus, 1, 0);  // the driver resets the device
  EXPECT_EQ(r.port_a->written, "one two last\n");
  EXPECT_FALSE(r.q(5).popUsed()) << "guest memory written after the reset";
  r.port_a->host->outputRoom();  // after the reset: nothing to serve, nothing happens
  EXPECT_EQ(r.port_a->written, "one two last\n");
}

// Hostile: what is still queued at a reset is the guest's to describe; a buffer outside guest
// memory ends the write-out there (nothing read from it, nothing written anywhere), what came
// before it is written, and the device resets as usual.
TEST(Hostile, QueuedConsoleOutputWithABufferOutsideMemoryAtReset) {
  MultiportRig r;
  r.init();
  r.bringUp();
  r.port_a->take = false;
  r.postText(5, "kept ");
  r.q(5).post({{0xffff'ffff'0000ULL, 64, false}});
  r.postText(5, "after");
  r.h.kickModern(5);
  EXPECT_EQ(r.port_a->written, "");
  r.h.commonWrite(virtio::common::kDeviceStatus, 1, 0);
  EXPECT_EQ(r.port_a->written, "kept ");
  EXPECT_EQ(r.h.modernStatus(), 0);
  EXPECT_FALSE(r.q(5).popUsed());
}

TEST(Hostile, ConsoleControlQueueFloodsAndBadPortsFromTheDriver) {
  MultiportRig r;
  r.init();
  r.bringUp();
  r.received();
  log::ScopedLogCapture logs;
  for (uint32_t id : {3u, 7u, 1000u, 0xffffffffu}) r.sendControl(id, kPortReady, 1);
  r.sendControl(1, 0x42, 1);                                      // unknown event
  for (int i = 0; i < 300; ++i) r.sendControl(1, kPortReady, 1);  // repeats: answered once
  EXPECT_TRUE(r.received().empty());
  EXPECT_FALSE(r.h.modernStatus() & virtio::status::kNeedsReset);
  EXPECT_TRUE(logs.contains("does not have")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(logs.contains("unknown control event")) << ::testing::PrintToString(logs.lines());
  // A short message (4 bytes) is refused; the queue goes on.
  uint64_t s = r.q(3).alloc(4);
  r.q(3).post({{s, 4, false}});
  r.h.kickModern(VirtioConsole::kControlTransmitQueue);
  EXPECT_TRUE(logs.contains("shorter than its header"));
  EXPECT_EQ(r.q(3).drainUsed().size(), 4 + 4 + 1 + 300 + 1u);
}

TEST(Hostile, ConsoleControlBufferTooSmallForAPortName) {
  MultiportRig r;
  r.init();
  r.sendControl(0, kDeviceReady, 1);
  uint64_t a = r.q(2).alloc(64);
  r.control_rx[r.q(2).post({{a, 64, true}})] = a;
  uint64_t tiny = r.q(2).alloc(8);
  r.control_rx[r.q(2).post({{tiny, 8, true}})] = tiny;
  r.h.kickModern(VirtioConsole::kControlReceiveQueue);  // DEVICE_ADD(0) into the big buffer,
  // DEVICE_ADD(1) into the tiny one (8 bytes fit the header alone)
  EXPECT_EQ(r.received().size(), 2u);
  r.postControlBuffers(0);
  uint64_t tiny2 = r.q(2).alloc(8);
  r.control_rx[r.q(2).post({{tiny2, 8, true}})] = tiny2;
  r.h.kickModern(VirtioConsole::kControlReceiveQueue);
  EXPECT_EQ(r.received().size(), 1u);  // DEVICE_ADD(2)
  r.sendControl(1, kPortReady, 1);     // PORT_NAME(1) needs 19 bytes: the 8-byte buffer is
  uint64_t tiny3 = r.q(2).alloc(8);    // given back empty and the message dropped
  r.control_rx[r.q(2).post({{tiny3, 8, true}})] = tiny3;
  r.h.kickModern(VirtioConsole::kControlReceiveQueue);
  auto got = r.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 0xdeadu) << "returned empty";
  EXPECT_EQ(r.console->counters().dropped, 1u);
  EXPECT_FALSE(r.h.modernStatus() & virtio::status::kNeedsReset);
}

TEST(VirtioConsoleMultiport, WithoutMultiportOnlyTheConsolePortWorks) {
  MultiportRig r;
  r.init(/*multiport=*/false);
  r.postText(1, "ok");
  r.h.kickModern(1);
  EXPECT_EQ(r.out0, "ok");
  EXPECT_EQ(r.port_a->host->pushInput(bytes("x")), 0u);
  r.postControlBuffers(2);
  r.sendControl(0, kDeviceReady, 1);
  EXPECT_TRUE(r.received().empty()) << "no control protocol without MULTIPORT";
}

}  // namespace
}  // namespace ember::devices
