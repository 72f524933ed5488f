// A 16550A-compatible UART (the PC's COM1 at port 0x3f8, IRQ 4): the guest's serial console.
//
// Transmitted bytes go to a ConsoleOutput (never blocking the vCPU); received bytes come from the
// host (stdin) through pushInput() into a bounded FIFO. Implements what Linux's 8250 driver and
// simple polled drivers use: divisor latch, IER/IIR interrupt priorities (line status, received
// data, THR empty, modem status), FIFO control, LCR, MCR including loopback mode (which Linux's
// autoconfig probes), LSR, MSR and the scratch register.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "kvm/Bus.h"
#include "kvm/InterruptLine.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::devices {

class Uart8250 : public BusDevice {
 public:
  static constexpr size_t kInputCapacity = 4096;
  using OutputSink = std::function<void(std::span<const uint8_t>)>;

  Uart8250(InterruptLine& irq, OutputSink output);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues host input for the guest. Returns how many bytes were accepted (the FIFO is bounded).
  size_t pushInput(std::span<const uint8_t> bytes);
  size_t inputRoom() const;
  // Called (outside the UART's lock) whenever the guest drains input and room becomes available.
  void setInputRoomCallback(std::function<void()> cb) { on_room_ = std::move(cb); }

  // A snapshot's copy (issue 13): the registers the guest set, the pending interrupt causes and
  // the input not yet read. load() reads untrusted bytes (at most kInputCapacity of input; the
  // reader's errors) and drives the IRQ line to what the loaded registers say.
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  uint8_t readRegister(uint8_t reg);
  void writeRegister(uint8_t reg, uint8_t value);
  uint8_t interruptId() const;
  void updateIrqLocked();
  uint8_t lineStatus() const;
  uint8_t modemStatus() const;

  InterruptLine& irq_;
  OutputSink output_;
  std::function<void()> on_room_;
  mutable std::mutex mutex_;
  std::deque<uint8_t> rx_;
  uint16_t divisor_ = 12;  // 9600 baud
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0x03;  // 8N1
  uint8_t mcr_ = 0x08;  // OUT2
  uint8_t scr_ = 0;
  uint8_t fcr_ = 0;
  uint8_t msr_delta_ = 0;  // MSR bits 0-3
  bool thr_interrupt_ = false;
  bool overrun_ = false;
  bool irq_level_ = false;
};

}  // namespace ember::devices
