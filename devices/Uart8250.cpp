// 16550A register model.
#include "devices/Uart8250.h"

namespace ember::devices {

namespace {
// Register offsets (with DLAB = LCR bit 7 selecting the divisor latch at 0/1).
constexpr uint8_t kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                  kScr = 7;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRda = 0x01, kIerThre = 0x02, kIerRls = 0x04, kIerMsi = 0x08;
constexpr uint8_t kIirNone = 0x01, kIirRls = 0x06, kIirRda = 0x04, kIirThre = 0x02, kIirMsi = 0x00;
constexpr uint8_t kIirFifoEnabled = 0xc0;
constexpr uint8_t kLsrDr = 0x01, kLsrOe = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
}  // namespace

Uart8250::Uart8250(InterruptLine& irq, OutputSink output) : irq_(irq), output_(std::move(output)) {}

void Uart8250::read(uint64_t offset, std::span<uint8_t> data) {
  bool room_freed = false;
  {
    std::lock_guard lock(mutex_);
    size_t before = rx_.size();
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < 8 ? readRegister(static_cast<uint8_t>(offset + i)) : 0xff;
    }
    room_freed = before >= kInputCapacity / 2 && rx_.size() < kInputCapacity / 2;
    updateIrqLocked();
  }
  if (room_freed && on_room_) {
    on_room_();
  }
}

void Uart8250::write(uint64_t offset, std::span<const uint8_t> data) {
  bool room_freed = false;
  {
    std::lock_guard lock(mutex_);
    size_t before = rx_.size();
    for (size_t i = 0; i < data.size() && offset + i < 8; ++i) {
      writeRegister(static_cast<uint8_t>(offset + i), data[i]);
    }
    // FCR can clear the receive FIFO: that frees room as reading it does.
    room_freed = before >= kInputCapacity / 2 && rx_.size() < kInputCapacity / 2;
    updateIrqLocked();
  }
  if (room_freed && on_room_) {
    on_room_();
  }
}

uint8_t Uart8250::lineStatus() const {
  // Transmission is immediate, so the holding and shift registers are always empty.
  uint8_t lsr = kLsrThre | kLsrTemt;
  if (!rx_.empty()) {
    lsr |= kLsrDr;
  }
  if (overrun_) {
    lsr |= kLsrOe;
  }
  return lsr;
}

uint8_t Uart8250::modemStatus() const {
  uint8_t status;
  if (mcr_ & kMcrLoop) {
    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
    status = ((mcr_ & kMcrDtr) ? kMsrDsr : 0) | ((mcr_ & kMcrRts) ? kMsrCts : 0) |
             ((mcr_ & kMcrOut1) ? kMsrRi : 0) | ((mcr_ & kMcrOut2) ? kMsrDcd : 0);
  } else {
    status = kMsrDcd | kMsrDsr | kMsrCts;  // a modem that is always there and ready
  }
  return status | msr_delta_;
}

uint8_t Uart8250::interruptId() const {
  if ((ier_ & kIerRls) && overrun_) {
    return kIirRls;
  }
  if ((ier_ & kIerRda) && !rx_.empty()) {
    return kIirRda;
  }
  if ((ier_ & kIerThre) && thr_interrupt_) {
    return kIirThre;
  }
  if ((ier_ & kIerMsi) && msr_delta_ != 0) {
    return kIirMsi;
  }
  return kIirNone;
}

void Uart8250::updateIrqLocked() {
  bool level = interruptId() != kIirNone;
  if (level != irq_level_) {
    irq_level_ = level;
    irq_.setLevel(level);
  }
}

uint8_t Uart8250::readRegister(uint8_t reg) {
  switch (reg) {
    case kRbrThr: {
      if (lcr_ & kLcrDlab) {
        return static_cast<uint8_t>(divisor_);
      }
      if (rx_.empty()) {
        return 0;
      }
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer:
      return (lcr_ & kLcrDlab) ? static_cast<uint8_t>(divisor_ >> 8) : ier_;
    case kIirFcr: {
      uint8_t iir = interruptId();
      if (iir == kIirThre) {
        thr_interrupt_ = false;  // reading IIR clears a THR-empty interrupt
      }
      return iir | ((fcr_ & kFcrEnable) ? kIirFifoEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      uint8_t lsr = lineStatus();
      overrun_ = false;  // reading LSR clears the error bits
      return lsr;
    }
    case kMsr: {
      uint8_t msr = modemStatus();
      msr_delta_ = 0;
      return msr;
    }
    case kScr:
      return scr_;
    default:
      return 0xff;
  }
}

void Uart8250::writeRegister(uint8_t reg, uint8_t value) {
  switch (reg) {
    case kRbrThr:
      if (lcr_ & kLcrDlab) {
        divisor_ = static_cast<uint16_t>((divisor_ & 0xff00) | value);
        return;
      }
      if (mcr_ & kMcrLoop) {
        if (rx_.size() < kInputCapacity) {
          rx_.push_back(value);
        } else {
          overrun_ = true;
        }
      } else {
        output_(std::span<const uint8_t>(&value, 1));
      }
      // The byte left at once, so the holding register is empty again.
      thr_interrupt_ = true;
      return;
    case kIer:
      if (lcr_ & kLcrDlab) {
        divisor_ = static_cast<uint16_t>((divisor_ & 0x00ff) | (value << 8));
        return;
      }
      if ((value & kIerThre) && !(ier_ & kIerThre)) {
        thr_interrupt_ = true;  // enabling THRE with an empty THR raises it
      }
      ier_ = value & 0x0f;
      return;
    case kIirFcr:
      fcr_ = value;
      if (value & kFcrClearRx) {
        rx_.clear();
      }
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr: {
      uint8_t old = modemStatus() & 0xf0;
      mcr_ = value & 0x1f;
      uint8_t now = modemStatus() & 0xf0;
      uint8_t changed = old ^ now;
      // Delta bits: DCTS, DDSR, TERI (RI falling edge), DDCD.
      msr_delta_ |= ((changed & kMsrCts) ? 0x01 : 0) | ((changed & kMsrDsr) ? 0x02 : 0) |
                    (((old & kMsrRi) && !(now & kMsrRi)) ? 0x04 : 0) |
                    ((changed & kMsrDcd) ? 0x08 : 0);
      return;
    }
    case kScr:
      scr_ = value;
      return;
    default:
      return;  // LSR and MSR are read-only
  }
}

size_t Uart8250::pushInput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  size_t n = std::min(bytes.size(), kInputCapacity - rx_.size());
  rx_.insert(rx_.end(), bytes.begin(), bytes.begin() + n);
  updateIrqLocked();
  return n;
}

size_t Uart8250::inputRoom() const {
  std::lock_guard lock(mutex_);
  return kInputCapacity - rx_.size();
}

void Uart8250::save(StateWriter& w) const {
  std::lock_guard lock(mutex_);
  w.u16(divisor_);
  w.u8(ier_);
  w.u8(lcr_);
  w.u8(mcr_);
  w.u8(scr_);
  w.u8(fcr_);
  w.u8(msr_delta_);
  w.boolean(thr_interrupt_);
  w.boolean(overrun_);
  std::vector<uint8_t> rx(rx_.begin(), rx_.end());
  w.blob(rx);
}

void Uart8250::load(StateReader& r) {
  std::lock_guard lock(mutex_);
  divisor_ = r.u16("divisor");
  ier_ = r.u8("ier");
  lcr_ = r.u8("lcr");
  mcr_ = r.u8("mcr");
  scr_ = r.u8("scr");
  fcr_ = r.u8("fcr");
  msr_delta_ = static_cast<uint8_t>(r.u8("msr_delta") & 0x0f);
  thr_interrupt_ = r.boolean("thr_interrupt");
  overrun_ = r.boolean("overrun");
  auto rx = r.blob("input", kInputCapacity);
  rx_.assign(rx.begin(), rx.end());
  updateIrqLocked();
}

}  // namespace ember::devices
