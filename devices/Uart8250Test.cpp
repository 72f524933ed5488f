// Uart8250: registers, DLAB, interrupt priorities and IRQ line, loopback, bounded input FIFO.
// test-labels: threaded
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devices/Uart8250.h"

namespace ember::devices {
namespace {

constexpr uint8_t kRbr = 0, kThr = 0, kDll = 0, kIer = 1, kDlm = 1, kIir = 2, kFcr = 2, kLcr = 3,
                  kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

// Records every level change the UART drives.
class FakeIrq : public InterruptLine {
 public:
  void setLevel(bool asserted) override {
    std::lock_guard lock(mutex_);
    levels_.push_back(asserted);
  }
  bool level() const {
    std::lock_guard lock(mutex_);
    return !levels_.empty() && levels_.back();
  }
  std::vector<bool> levels() const {
    std::lock_guard lock(mutex_);
    return levels_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<bool> levels_;
};

class Uart8250Test : public ::testing::Test {
 protected:
  Uart8250Test()
      : uart_(irq_, [this](std::span<const uint8_t> b) { out_.append(b.begin(), b.end()); }) {}

  uint8_t in(uint8_t reg) {
    uint8_t v = 0x5a;
    uart_.read(reg, std::span(&v, 1));
    return v;
  }
  void out(uint8_t reg, uint8_t value) { uart_.write(reg, std::span(&value, 1)); }
  size_t push(const std::string& s) {
    return uart_.pushInput(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  size_t pushN(size_t n, uint8_t value = 'x') {
    std::vector<uint8_t> bytes(n, value);
    return uart_.pushInput(bytes);
  }

  FakeIrq irq_;
  std::string out_;
  Uart8250 uart_;
};

TEST_F(Uart8250Test, TransmitsThrBytesToTheSink) {
  for (char c : std::string("hi\n")) {
    out(kThr, static_cast<uint8_t>(c));
  }
  EXPECT_EQ(out_, "hi\n");
  EXPECT_TRUE(irq_.levels().empty());  // no interrupt enabled, the line never moved
}

TEST_F(Uart8250Test, ResetStateAndScratchRegister) {
  EXPECT_EQ(in(kIer), 0x00);
  EXPECT_EQ(in(kIir), 0x01);  // no interrupt pending
  EXPECT_EQ(in(kLcr), 0x03);
  EXPECT_EQ(in(kMcr), 0x08);
  EXPECT_EQ(in(kLsr), 0x60);  // THRE | TEMT
  EXPECT_EQ(in(kMsr), 0xb0);  // DCD | DSR | CTS, no deltas
  EXPECT_EQ(in(kRbr), 0x00);  // empty receiver reads 0
  EXPECT_EQ(in(kScr), 0x00);
  out(kScr, 0xa5);
  EXPECT_EQ(in(kScr), 0xa5);
  out(kScr, 0x3c);
  EXPECT_EQ(in(kScr), 0x3c);
}

TEST_F(Uart8250Test, DivisorLatchIsSelectedByDlab) {
  out(kLcr, 0x83);          // DLAB | 8N1
  EXPECT_EQ(in(kDll), 12);  // 9600 baud
  EXPECT_EQ(in(kDlm), 0);
  out(kDll, 0x01);
  out(kDlm, 0x02);
  EXPECT_EQ(in(kDll), 0x01);
  EXPECT_EQ(in(kDlm), 0x02);
  EXPECT_TRUE(out_.empty());  // the DLL write was not transmitted
  out(kLcr, 0x03);
  EXPECT_EQ(in(kIer), 0x00);  // IER was not touched by the DLM write
  EXPECT_EQ(in(kLcr), 0x03);
  out(kThr, 'A');
  EXPECT_EQ(out_, "A");
  out(kLcr, 0x80);
  EXPECT_EQ(in(kDll), 0x01);  // the latch kept its value
  EXPECT_EQ(in(kDlm), 0x02);
}

TEST_F(Uart8250Test, LineStatusReportsDataReady) {
  EXPECT_EQ(push("ab"), 2u);
  EXPECT_EQ(in(kLsr), 0x61);
  EXPECT_EQ(in(kRbr), 'a');
  EXPECT_EQ(in(kLsr), 0x61);
  EXPECT_EQ(in(kRbr), 'b');
  EXPECT_EQ(in(kLsr), 0x60);
}

TEST_F(Uart8250Test, ThreInterruptRaisedWhenEnabledClearedByIirRaisedAgainByThrWrite) {
  out(kIer, 0x02);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kIir), 0x02);
  EXPECT_FALSE(irq_.level());  // reading IIR cleared it
  EXPECT_EQ(in(kIir), 0x01);
  out(kThr, 'x');
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kIir), 0x02);
  EXPECT_EQ(in(kIir), 0x01);
  EXPECT_EQ(irq_.levels(), (std::vector<bool>{true, false, true, false}));

  // Disabling THRE masks a pending THRE interrupt.
  out(kThr, 'y');
  EXPECT_TRUE(irq_.level());
  out(kIer, 0x00);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(Uart8250Test, IirReportsFifoEnabled) {
  out(kFcr, 0x01);
  EXPECT_EQ(in(kIir), 0xc1);
  out(kIer, 0x02);
  EXPECT_EQ(in(kIir), 0xc2);
  EXPECT_EQ(in(kIir), 0xc1);
  out(kFcr, 0x00);
  EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(Uart8250Test, InterruptPrioritiesRlsRdaThreMsi) {
  out(kIer, 0x0f);  // all four sources; raises THRE
  out(kMcr, 0x10);  // loopback: modem lines change, so MSR deltas appear
  ASSERT_EQ(pushN(Uart8250::kInputCapacity), Uart8250::kInputCapacity);
  out(kThr, 0x42);  // looped back into a full FIFO: overrun
  EXPECT_TRUE(irq_.level());

  EXPECT_EQ(in(kIir), 0x06);       // receiver line status first
  EXPECT_EQ(in(kLsr)&0x03, 0x03);  // OE | DR; reading clears OE
  EXPECT_EQ(in(kLsr)&0x02, 0x00);
  EXPECT_EQ(in(kIir), 0x04);  // then received data
  EXPECT_EQ(in(kIir), 0x04);  // reading IIR does not clear RDA
  out(kFcr, 0x02);            // clear the receive FIFO
  EXPECT_EQ(in(kIir), 0x02);  // then THR empty (cleared by this read)
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kIir), 0x00);    // then modem status
  EXPECT_NE(in(kMsr)&0x0f, 0);  // deltas, cleared by the read
  EXPECT_EQ(in(kMsr)&0x0f, 0);
  EXPECT_EQ(in(kIir), 0x01);
  EXPECT_FALSE(irq_.level());
}

TEST_F(Uart8250Test, DisabledSourcesDoNotInterrupt) {
  out(kMcr, 0x10);
  push("z");
  out(kThr, 'q');
  EXPECT_EQ(in(kIir), 0x01);
  EXPECT_FALSE(irq_.level());
  out(kIer, 0x01);  // only RDA
  EXPECT_EQ(in(kIir), 0x04);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kRbr), 'z');
  EXPECT_EQ(in(kRbr), 'q');
  EXPECT_FALSE(irq_.level());
}

TEST_F(Uart8250Test, IrqLineFollowsReceivedData) {
  out(kIer, 0x01);
  EXPECT_TRUE(irq_.levels().empty());
  push("ab");
  EXPECT_TRUE(irq_.level());
  push("c");  // still pending: no new edge
  in(kRbr);
  in(kRbr);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kRbr), 'c');
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(irq_.levels(), (std::vector<bool>{true, false}));
}

TEST_F(Uart8250Test, LoopbackModeAsLinuxAutoconfigProbesIt) {
  out(kMcr, 0x1a);                 // LOOP | OUT2 | RTS
  EXPECT_EQ(in(kMsr)&0xf0, 0x90);  // DCD | CTS
  out(kMcr, 0x1f);
  EXPECT_EQ(in(kMsr)&0xf0, 0xf0);
  out(kMcr, 0x10);
  EXPECT_EQ(in(kMsr)&0xf0, 0x00);
  out(kMcr, 0x11);  // DTR -> DSR
  EXPECT_EQ(in(kMsr)&0xf0, 0x20);
  out(kMcr, 0x14);  // OUT1 -> RI
  EXPECT_EQ(in(kMsr)&0xf0, 0x40);
  out(kMcr, 0x10);  // RI falling edge: TERI
  EXPECT_EQ(in(kMsr), 0x04);

  out(kThr, 0x5a);
  EXPECT_TRUE(out_.empty());  // nothing left the UART
  EXPECT_EQ(in(kLsr)&0x01, 0x01);
  EXPECT_EQ(in(kRbr), 0x5a);
  EXPECT_EQ(in(kLsr)&0x01, 0x00);

  out(kMcr, 0x0b);  // back to normal: a present, ready modem again
  EXPECT_EQ(in(kMsr)&0xf0, 0xb0);
  out(kThr, 'k');
  EXPECT_EQ(out_, "k");
}

TEST_F(Uart8250Test, ModemStatusInterrupt) {
  out(kIer, 0x08);
  EXPECT_FALSE(irq_.level());
  out(kMcr, 0x18);  // loopback, OUT2 -> DCD stays, CTS and DSR drop
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(in(kIir), 0x00);
  EXPECT_EQ(in(kMsr), 0x80 | 0x01 | 0x02);  // DCD, DCTS, DDSR
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(Uart8250Test, InputFifoIsBounded) {
  EXPECT_EQ(uart_.inputRoom(), Uart8250::kInputCapacity);
  EXPECT_EQ(pushN(Uart8250::kInputCapacity + 100), Uart8250::kInputCapacity);
  EXPECT_EQ(uart_.inputRoom(), 0u);
  EXPECT_EQ(push("more"), 0u);
  in(kRbr);
  EXPECT_EQ(uart_.inputRoom(), 1u);
  EXPECT_EQ(push("ab"), 1u);
  // FIFO order is kept, and the accepted byte is last.
  for (size_t i = 0; i + 1 < Uart8250::kInputCapacity; ++i) {
    ASSERT_EQ(in(kRbr), 'x') << i;
  }
  EXPECT_EQ(in(kRbr), 'a');
  EXPECT_EQ(in(kLsr)&0x01, 0);
}

TEST_F(Uart8250Test, RoomCallbackFiresWhenTheGuestDrainsBelowHalf) {
  int calls = 0;
  // The callback runs outside the UART's lock: it may push input straight back.
  uart_.setInputRoomCallback([&] {
    ++calls;
    EXPECT_GT(uart_.inputRoom(), Uart8250::kInputCapacity / 2);
  });
  ASSERT_EQ(pushN(Uart8250::kInputCapacity), Uart8250::kInputCapacity);
  for (size_t i = 0; i < Uart8250::kInputCapacity / 2; ++i) {
    in(kRbr);
  }
  EXPECT_EQ(calls, 0);  // exactly half full
  in(kRbr);
  EXPECT_EQ(calls, 1);
  while (uart_.inputRoom() < Uart8250::kInputCapacity) {
    in(kRbr);
  }
  EXPECT_EQ(calls, 1);
  // A wide read crossing the threshold fires it too.
  ASSERT_EQ(pushN(Uart8250::kInputCapacity / 2), Uart8250::kInputCapacity / 2);
  uint8_t two[2];
  uart_.read(kRbr, two);  // RBR pops one byte, IER is read alongside
  EXPECT_EQ(calls, 2);
}

TEST_F(Uart8250Test, RoomCallbackCanRefillTheFifo) {
  std::vector<uint8_t> backlog(Uart8250::kInputCapacity, 'y');
  size_t delivered = 0;
  uart_.setInputRoomCallback(
      [&] { delivered += uart_.pushInput(std::span(backlog).subspan(delivered)); });
  ASSERT_EQ(pushN(Uart8250::kInputCapacity, 'x'), Uart8250::kInputCapacity);
  size_t received = 0;
  while (in(kLsr)&0x01) {
    in(kRbr);
    ++received;
  }
  EXPECT_EQ(delivered, backlog.size());
  EXPECT_EQ(received, 2 * Uart8250::kInputCapacity);
}

TEST_F(Uart8250Test, RoomCallbackFiresWhenFcrClearsAFullFifo) {
  int calls = 0;
  uart_.setInputRoomCallback([&] { ++calls; });
  ASSERT_EQ(pushN(Uart8250::kInputCapacity), Uart8250::kInputCapacity);
  out(kFcr, 0x07);  // enable and clear both FIFOs, as Linux does at start-up
  EXPECT_EQ(uart_.inputRoom(), Uart8250::kInputCapacity);
  if (calls == 0) {
  }
  EXPECT_EQ(calls, 1);
}

TEST_F(Uart8250Test, WideAndOutOfRangeAccessesAreHarmless) {
  out(kScr, 0x77);
  uint8_t four[4] = {1, 2, 3, 4};
  uart_.read(6, four);  // MSR, SCR, then past the registers
  EXPECT_EQ(four[1], 0x77);
  EXPECT_EQ(four[2], 0xff);
  EXPECT_EQ(four[3], 0xff);
  uint8_t b = 0;
  uart_.read(8, std::span(&b, 1));
  EXPECT_EQ(b, 0xff);
  uart_.read(0x1000, std::span(&b, 1));
  EXPECT_EQ(b, 0xff);

  const uint8_t junk[4] = {0xde, 0xad, 0xbe, 0xef};
  uart_.write(8, junk);
  uart_.write(12, std::span(junk, 1));
  uart_.write(7, junk);  // SCR, then nothing
  EXPECT_EQ(in(kScr), 0xde);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(in(kLcr), 0x03);
  EXPECT_EQ(in(kIer), 0x00);
  EXPECT_TRUE(irq_.levels().empty());
  uart_.read(0, std::span<uint8_t>());
  uart_.write(0, std::span<const uint8_t>());
  EXPECT_TRUE(out_.empty());
}

TEST_F(Uart8250Test, ConcurrentInputAndGuestReads) {
  constexpr size_t kTotal = 20000;
  std::atomic<size_t> resumes{0};
  uart_.setInputRoomCallback([&] { ++resumes; });
  std::thread host([&] {
    size_t sent = 0;
    while (sent < kTotal) {
      uint8_t chunk[64];
      size_t n = std::min(sizeof chunk, kTotal - sent);
      for (size_t i = 0; i < n; ++i) {
        chunk[i] = static_cast<uint8_t>((sent + i) & 0xff);
      }
      size_t took = uart_.pushInput(std::span(chunk, n));
      sent += took;
      if (took < n) {
        std::this_thread::yield();
      }
    }
  });
  size_t received = 0;
  bool in_order = true;
  while (received < kTotal) {
    if (in(kLsr)&0x01) {
      in_order = in_order && in(kRbr) == static_cast<uint8_t>(received & 0xff);
      ++received;
    }
  }
  host.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(uart_.inputRoom(), Uart8250::kInputCapacity);
}

// A snapshot's copy: a UART with its divisor, scratch register, enabled data interrupt and two
// unread input bytes, saved and loaded into a fresh one, reads the same and raises its IRQ; a
// saved input longer than the buffer is refused.
TEST_F(Uart8250Test, SavedStateLoadsIntoAFreshUart) {
  out(3, 0x83);  // DLAB
  out(0, 0x01);  // divisor 1: 115200 baud
  out(3, 0x03);
  out(7, 0x42);  // scratch
  out(1, 0x01);  // IER: received data available
  push("ab");
  StateWriter w;
  uart_.save(w);
  auto bytes = w.take();

  FakeIrq irq;
  std::string sink;
  Uart8250 fresh(irq, [&](std::span<const uint8_t> b) { sink.append(b.begin(), b.end()); });
  StateReader r(bytes, "UART 0");
  fresh.load(r);
  ASSERT_TRUE(r.finish().ok()) << r.finish().error().message;
  EXPECT_TRUE(irq.level()) << "data waiting with its interrupt enabled";
  auto reg = [&](uint8_t off) {
    uint8_t v = 0;
    fresh.read(off, std::span(&v, 1));
    return v;
  };
  EXPECT_EQ(reg(7), 0x42);
  EXPECT_EQ(reg(3), 0x03);
  EXPECT_EQ(reg(0), 'a');
  EXPECT_EQ(reg(0), 'b');
  EXPECT_FALSE(irq.level());
  uint8_t dlab = 0x83;
  fresh.write(3, std::span(&dlab, 1));
  EXPECT_EQ(reg(0), 0x01) << "the divisor";

  StateWriter big;
  big.u16(1);
  for (int i = 0; i < 6; ++i) big.u8(0);  // ier, lcr, mcr, scr, fcr, msr_delta
  big.boolean(false);
  big.boolean(false);
  big.blob(std::vector<uint8_t>(Uart8250::kInputCapacity + 1));
  auto big_bytes = big.take();
  StateReader rb(big_bytes, "UART 0");
  Uart8250 other(irq, [](std::span<const uint8_t>) {});
  other.load(rb);
  EXPECT_NE(rb.finish().error().message.find("input"), std::string::npos);
}

}  // namespace
}  // namespace ember::devices
