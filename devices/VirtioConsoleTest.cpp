// VirtioConsole through the virtio-pci transport: transmit to the output sink, host input into
// the guest's receive buffers (and none without buffers), and a broken transmit chain.
#include <gtest/gtest.h>

#include <string>

#include "devices/VirtioConsole.h"
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

}  // namespace
}  // namespace ember::devices
