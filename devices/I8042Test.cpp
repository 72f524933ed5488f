// I8042: reset through command 0xfe and through the output port, self test, command byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/I8042.h"
#include "devices/Ps2Keyboard.h"
#include "devices/testing/FakeVmControl.h"

namespace ember::devices {
namespace {

constexpr uint64_t kData = 0, kStatus = 4;
constexpr uint8_t kOutputFull = 0x01, kSystemFlag = 0x04, kCommandPending = 0x08;

using testing::FakeVmControl;

class I8042Test : public ::testing::Test {
 protected:
  uint8_t in(uint64_t port) {
    uint8_t v = 0x5a;
    kbc_.read(port, std::span(&v, 1));
    return v;
  }
  void out(uint64_t port, uint8_t value) { kbc_.write(port, std::span(&value, 1)); }

  FakeVmControl control_;
  I8042 kbc_{control_};
};

TEST_F(I8042Test, ResetPulseCommandRequestsExitZero) {
  out(kStatus, 0xfe);
  ASSERT_EQ(control_.statuses, std::vector<int>{0});
  EXPECT_NE(control_.reasons[0].find("reset"), std::string::npos);
  EXPECT_EQ(control_.requests[0].reason, ExitReason::Reset);
}

TEST_F(I8042Test, OutputPortWriteWithResetBitClearRequestsExitZero) {
  out(kStatus, 0xd1);
  EXPECT_EQ(in(kStatus)&kCommandPending, kCommandPending);
  out(kData, 0x01);  // bit 0 set: the reset line stays high
  EXPECT_TRUE(control_.statuses.empty());
  EXPECT_EQ(in(kStatus)&kCommandPending, 0);

  out(kData, 0x00);  // a data byte with no command pending does nothing
  EXPECT_TRUE(control_.statuses.empty());

  out(kStatus, 0xd1);
  out(kData, 0xfe);
  ASSERT_EQ(control_.statuses, std::vector<int>{0});
  EXPECT_NE(control_.reasons[0].find("output port"), std::string::npos);
}

TEST_F(I8042Test, ANewCommandCancelsAPendingOne) {
  out(kStatus, 0xd1);
  out(kStatus, 0xaa);
  out(kData, 0x00);
  EXPECT_TRUE(control_.statuses.empty());
  EXPECT_EQ(in(kData), 0x55);
}

TEST_F(I8042Test, SelfTestAndInterfaceTest) {
  EXPECT_EQ(in(kStatus), kSystemFlag);  // nothing to read
  out(kStatus, 0xaa);
  EXPECT_EQ(in(kStatus), kSystemFlag | kOutputFull);
  EXPECT_EQ(in(kData), 0x55);
  EXPECT_EQ(in(kStatus), kSystemFlag);
  EXPECT_EQ(in(kData), 0x00);  // nothing more

  out(kStatus, 0xab);
  EXPECT_EQ(in(kStatus)&kOutputFull, kOutputFull);
  EXPECT_EQ(in(kData), 0x00);
  EXPECT_TRUE(control_.statuses.empty());
}

TEST_F(I8042Test, CommandByteRoundTrip) {
  out(kStatus, 0x20);
  EXPECT_EQ(in(kData), 0x30);  // reset value: both clocks disabled
  out(kStatus, 0x60);
  EXPECT_EQ(in(kStatus)&kCommandPending, kCommandPending);
  out(kData, 0x47);
  out(kStatus, 0x20);
  EXPECT_EQ(in(kStatus)&kOutputFull, kOutputFull);
  EXPECT_EQ(in(kData), 0x47);
  out(kStatus, 0x60);
  out(kData, 0x00);
  out(kStatus, 0x20);
  EXPECT_EQ(in(kData), 0x00);
  EXPECT_TRUE(control_.statuses.empty());
}

TEST_F(I8042Test, UnknownCommandsAndWideAccessesAreIgnored) {
  for (uint8_t cmd : {0xa7, 0xa8, 0xad, 0xae, 0xd4, 0xed, 0xff}) {
    out(kStatus, cmd);
  }
  EXPECT_TRUE(control_.statuses.empty());

  const uint8_t wide[2] = {0xfe, 0xfe};
  kbc_.write(kStatus, wide);
  EXPECT_TRUE(control_.statuses.empty());
  uint8_t two[2] = {0, 0};
  kbc_.read(kStatus, two);
  EXPECT_EQ(two[0], 0xff);
  EXPECT_EQ(two[1], 0xff);
  EXPECT_EQ(in(2), 0xff);  // ports between data and status float high
  out(2, 0xfe);
  EXPECT_TRUE(control_.statuses.empty());
}

// Counts the edges of IRQ 1.
struct PulseCounter : InterruptLine {
  int pulses = 0;
  bool level = false;
  void setLevel(bool asserted) override {
    if (asserted && !level) ++pulses;
    level = asserted;
  }
};

class I8042Keyboard : public I8042Test {
 protected:
  PulseCounter irq_;
  I8042 kbd_{control_, &irq_};
  uint8_t kin(uint64_t port) {
    uint8_t v = 0x5a;
    kbd_.read(port, std::span(&v, 1));
    return v;
  }
  void kout(uint64_t port, uint8_t value) { kbd_.write(port, std::span(&value, 1)); }
  std::vector<uint8_t> kdrain() {
    std::vector<uint8_t> out;
    while (kin(kStatus) & kOutputFull) out.push_back(kin(kData));
    return out;
  }
};

TEST_F(I8042Keyboard, LinuxsProbeFindsAKeyboardAndNoMouse) {
  kout(kStatus, 0xaa);  // self test
  EXPECT_EQ(kdrain(), std::vector<uint8_t>{0x55});
  kout(kStatus, 0xd3);  // the second port's loopback does not echo
  kout(kData, 0x5a);
  EXPECT_EQ(kdrain(), std::vector<uint8_t>{0xa5});
  kout(kStatus, 0xa9);  // and its interface test fails: no mouse
  EXPECT_EQ(kdrain(), std::vector<uint8_t>{0x01});
  kout(kStatus, 0xab);  // the keyboard port's passes
  EXPECT_EQ(kdrain(), std::vector<uint8_t>{0x00});
  EXPECT_EQ(irq_.pulses, 0);  // interrupts are off in the command byte
  kout(kStatus, 0x60);        // interrupts on, keyboard port enabled, translation off
  kout(kData, 0x01);
  kout(kData, 0xf2);  // GETID through the data port: one pulse per byte, as each is read
  EXPECT_EQ(irq_.pulses, 1);
  EXPECT_EQ(kdrain(), (std::vector<uint8_t>{0xfa, 0xab, 0x83}));
  EXPECT_EQ(irq_.pulses, 3);
  kout(kStatus, 0x20);
  EXPECT_EQ(kdrain(), std::vector<uint8_t>{0x01});
}

TEST_F(I8042Keyboard, CtrlAltDelOnlyOnAnEnabledKeyboardAndTranslatedWithXlate) {
  // The power-on command byte has the keyboard port disabled.
  auto refused = kbd_.sendCtrlAltDel();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("has not enabled"), std::string::npos);
  kout(kStatus, 0x60);
  kout(kData, 0x01);
  ASSERT_TRUE(kbd_.sendCtrlAltDel());
  EXPECT_EQ(kdrain(), Ps2Keyboard::ctrlAltDel());
  EXPECT_EQ(irq_.pulses, 11);
  kout(kStatus, 0x60);
  kout(kData, 0x41);  // XLATE
  ASSERT_TRUE(kbd_.sendCtrlAltDel());
  EXPECT_EQ(kdrain(), translateToSet1(Ps2Keyboard::ctrlAltDel()));
  kout(kData, 0xf5);  // scanning off
  EXPECT_EQ(kdrain(), std::vector<uint8_t>{0xfa});
  EXPECT_FALSE(kbd_.sendCtrlAltDel());
  kout(kData, 0xf4);
  kdrain();
  kout(kStatus, 0xad);  // the keyboard port disabled by command
  EXPECT_FALSE(kbd_.sendCtrlAltDel());
  kout(kStatus, 0xae);
  EXPECT_TRUE(kbd_.sendCtrlAltDel());
}

// Hostile-guest case: a guest that writes commands and never reads fills a bounded buffer; the
// answers beyond it are dropped, and Ctrl-Alt-Del is refused rather than half typed.
TEST_F(I8042Keyboard, AGuestThatNeverReadsFillsABoundedBuffer) {
  kout(kStatus, 0x60);
  kout(kData, 0x01);
  for (int i = 0; i < 10000; ++i) kout(kData, 0xf2);
  auto full = kbd_.sendCtrlAltDel();
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("not reading"), std::string::npos);
  EXPECT_EQ(kdrain().size(), I8042::kOutputBytes);
  EXPECT_TRUE(kbd_.sendCtrlAltDel());
}

// A snapshot's copy: a controller with the keyboard's interrupt enabled, a command awaiting its
// data and a byte waiting, loaded into a fresh one, goes on where it was; a pending command that
// takes no data, an awaiting keyboard command that takes no argument and an output buffer over
// 16 bytes are refused.
TEST_F(I8042Keyboard, SavedStateLoadsIntoAFreshController) {
  kout(kStatus, 0x60);  // write the command byte
  kout(kData, 0x61);    // keyboard interrupt on, XLATE
  kout(kData, 0xf4);    // keyboard: enable (answers ACK)
  kout(kStatus, 0x60);  // and a command awaiting its data byte
  StateWriter w;
  kbd_.save(w);
  auto bytes = w.take();

  PulseCounter irq;
  I8042 fresh(control_, &irq);
  StateReader r(bytes, "I8042 0");
  fresh.load(r);
  ASSERT_TRUE(r.finish().ok()) << r.finish().error().message;
  EXPECT_EQ(irq.pulses, 0) << "loading raises nothing";
  auto fin = [&](uint64_t port) {
    uint8_t v = 0;
    fresh.read(port, std::span(&v, 1));
    return v;
  };
  EXPECT_EQ(fin(kStatus) & (kOutputFull | kCommandPending), kOutputFull | kCommandPending);
  EXPECT_EQ(fin(kData), 0xfa) << "the keyboard's ACK was waiting";
  uint8_t byte = 0x65;
  fresh.write(kData, std::span(&byte, 1));  // the pending command's data: a new command byte
  uint8_t read_cmd = 0x20;
  fresh.write(kStatus, std::span(&read_cmd, 1));
  EXPECT_EQ(fin(kData), 0x65);

  auto refused = [&](std::vector<uint8_t> b, const char* what) {
    I8042 other(control_, &irq);
    StateReader rr(b, "I8042 0");
    other.load(rr);
    auto f = rr.finish();
    EXPECT_FALSE(f.ok()) << what;
    if (!f.ok()) {
      EXPECT_NE(f.error().message.find(what), std::string::npos) << f.error().message;
    }
  };
  auto pending = bytes;
  pending[1] = 0xaa;  // self test: takes no data byte
  refused(pending, "takes no data byte");
  auto awaiting = bytes;
  awaiting[awaiting.size() - 2] = 0xf4;  // enable: takes no argument
  refused(awaiting, "takes no argument byte");
  StateWriter big;
  big.u8(0x61);
  big.u8(0);
  big.blob(std::vector<uint8_t>(I8042::kOutputBytes + 1));
  big.u8(0);
  big.boolean(true);
  refused(big.take(), "output buffer");
}

}  // namespace
}  // namespace ember::devices
