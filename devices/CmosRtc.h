// The PC's CMOS real-time clock, a Motorola MC146818A at ports 0x70 (index) and 0x71 (data), as
// the MC146818A data sheet describes it:
//   - 0x00-0x09: seconds, seconds alarm, minutes, minutes alarm, hours, hours alarm, day of week,
//     day of month, month, year; BCD or binary (status B's DM bit), 12- or 24-hour (its 24/12
//     bit; in 12-hour mode bit 7 of the hours is PM);
//   - 0x0a status A: UIP (bit 7) and the divider and rate-select bits. UIP always reads 0: the
//     time is computed when it is read, so no update is ever in progress and a guest that waits
//     for UIP to clear never waits;
//   - 0x0b status B: SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE;
//   - 0x0c status C: IRQF, PF, AF, UF, cleared by reading it;
//   - 0x0d status D: VRT (bit 7, valid RAM and time) always set;
//   - 0x0e-0x7f: battery-backed RAM, 0x32 being the century (the FADT's CENTURY field names it).
//
// The time is the host's clock (UTC) plus an offset. The guest sets the clock as the data sheet
// says, with SET in status B: the time registers it writes while SET is on are held, read back as
// written, and become the new time when SET is cleared; a time register written with SET off
// takes effect at once. Either way only the offset from the host's clock changes, never the host.
// The guest's time does not stop while the divider bits of status A are in reset: those bits are
// only stored.
//
// Interrupts (IRQ 8, the line high while IRQF is set): the update-ended (UF, once a second),
// alarm (AF, when the seconds, minutes and hours match their alarm registers, a value of 0xc0 to
// 0xff matching any) and periodic (PF, at the rate status A's RS bits select) flags are set as
// time passes whether or not their interrupts are enabled, so a guest may poll status C; with
// PIE, AIE or UIE on, a thread wakes at the next such event to raise the line.
//
// The index is the guest's: bit 7 of a write to port 0x70 is the NMI mask on a PC, ignored here,
// and the other seven bits always name one of the 128 registers, so no index reaches outside
// them. Reads of port 0x70 and accesses wider than a byte read 0xff and write nothing.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "kvm/Bus.h"
#include "kvm/InterruptLine.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::devices {

class CmosRtc : public BusDevice {
 public:
  static constexpr uint16_t kBase = 0x70;
  static constexpr uint16_t kSize = 2;
  static constexpr uint8_t kIrq = 8;                 // ISA IRQ 8, GSI 8 on the IOAPIC
  static constexpr uint8_t kCenturyRegister = 0x32;  // the FADT's CENTURY field

  // The host's clock: nanoseconds since the Unix epoch, UTC. The default reads CLOCK_REALTIME;
  // tests pass one they control.
  using Clock = std::function<int64_t()>;
  static int64_t hostClock();

  // Thread: a thread raises the interrupts as time passes (ember). Manual: only poll() and the
  // guest's accesses do (tests with a clock of their own).
  enum class Timer { Thread, Manual };

  explicit CmosRtc(InterruptLine& irq, Clock clock = hostClock, Timer timer = Timer::Thread);
  ~CmosRtc() override;
  CmosRtc(const CmosRtc&) = delete;
  CmosRtc& operator=(const CmosRtc&) = delete;

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Sets the flags of status C for the time passed up to now and raises IRQ 8 if one of them is
  // enabled. The interrupt thread calls it; a test with its own clock calls it instead.
  void poll();

  // A snapshot's copy (issue 13): the index, the 128 registers and the guest time's offset
  // from the host clock (so the guest's wall clock goes on with the host's across a restore,
  // as a real RTC's battery keeps it going while the machine is off), and the held time while
  // SET is on. load() reads untrusted bytes (errors are the reader's) and drives IRQ 8 to what
  // the loaded status C says.
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  uint8_t readRegister(uint8_t index, int64_t now);
  void writeRegister(uint8_t index, uint8_t value, int64_t now);
  // The guest's time now (host clock plus offset), in seconds and nanoseconds since the epoch.
  int64_t guestNs(int64_t now) const { return now + offset_ns_; }
  // Registers 0x00-0x09 and the century for a guest time, in the format status B selects.
  std::array<uint8_t, 10> encodeTime(int64_t guest_seconds, uint8_t& century) const;
  uint8_t encode(int value) const;
  int decode(uint8_t value) const;
  uint8_t encodeHours(int hours) const;
  int decodeHours(uint8_t value) const;
  // Replaces the guest time's field `index` (0x00-0x09 or the century) with `value`.
  int64_t withField(int64_t guest_seconds, uint8_t index, uint8_t value) const;
  bool alarmMatches(int64_t guest_seconds) const;
  int64_t periodicNs() const;  // 0: no periodic flag
  void advance(int64_t now);   // sets UF, AF and PF for the time since the last call
  void updateIrq();
  // When the interrupt thread should next call poll(): the next event of an enabled interrupt.
  int64_t nextEventNs(int64_t now) const;
  void interruptThread();

  InterruptLine& irq_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint8_t index_ = 0;
  std::array<uint8_t, 128> ram_{};  // the alarms, status A to D and the battery-backed RAM
  int64_t offset_ns_ = 0;           // guest time minus host time
  int64_t held_seconds_ = 0;        // while SET is on: the time the guest is writing
  int64_t last_advance_ns_ = 0;     // host time of the last advance()
  bool irq_level_ = false;
  std::thread thread_;
};

}  // namespace ember::devices
