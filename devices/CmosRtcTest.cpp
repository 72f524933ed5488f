// CmosRtc: the MC146818A's time registers in BCD and binary, 24- and 12-hour; status A to D;
// setting the time with SET and without; the update, alarm and periodic flags and IRQ 8; a
// hostile index; and the interrupt thread against the real clock.
// test-labels: threaded
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "devices/CmosRtc.h"

namespace ember::devices {
namespace {

constexpr uint8_t kSec = 0x00, kSecAlarm = 0x01, kMin = 0x02, kMinAlarm = 0x03, kHour = 0x04,
                  kHourAlarm = 0x05, kDow = 0x06, kMday = 0x07, kMonth = 0x08, kYear = 0x09,
                  kA = 0x0a, kB = 0x0b, kC = 0x0c, kD = 0x0d;
constexpr int64_t kSecond = 1'000'000'000;

class FakeIrq : public InterruptLine {
 public:
  void setLevel(bool asserted) override {
    level = asserted;
    ++changes;
  }
  std::atomic<bool> level{false};
  std::atomic<int> changes{0};
};

int64_t utc(int year, int month, int mday, int hour, int min, int sec) {
  tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = mday;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return static_cast<int64_t>(::timegm(&tm)) * kSecond;
}

class CmosRtcTest : public ::testing::Test {
 protected:
  // Wednesday 2026-12-02 15:04:05.25 UTC.
  int64_t now_ = utc(2026, 12, 2, 15, 4, 5) + kSecond / 4;
  FakeIrq irq_;
  CmosRtc rtc_{irq_, [this] { return now_; }, CmosRtc::Timer::Manual};

  uint8_t get(uint8_t index) {
    uint8_t i = index, v = 0;
    rtc_.write(0, std::span<const uint8_t>(&i, 1));
    rtc_.read(1, std::span<uint8_t>(&v, 1));
    return v;
  }
  void set(uint8_t index, uint8_t value) {
    rtc_.write(0, std::span<const uint8_t>(&index, 1));
    rtc_.write(1, std::span<const uint8_t>(&value, 1));
  }
};

TEST_F(CmosRtcTest, ReadsTheHostsUtcTimeInBcdAnd24HoursByDefault) {
  EXPECT_EQ(get(kB), 0x02);  // 24-hour, BCD
  EXPECT_EQ(get(kSec), 0x05);
  EXPECT_EQ(get(kMin), 0x04);
  EXPECT_EQ(get(kHour), 0x15);
  EXPECT_EQ(get(kDow), 0x04);  // Wednesday; 1 is Sunday
  EXPECT_EQ(get(kMday), 0x02);
  EXPECT_EQ(get(kMonth), 0x12);
  EXPECT_EQ(get(kYear), 0x26);
  EXPECT_EQ(get(CmosRtc::kCenturyRegister), 0x20);
  now_ += 55 * kSecond;  // 15:05:00.25
  EXPECT_EQ(get(kSec), 0x00);
  EXPECT_EQ(get(kMin), 0x05);
}

TEST_F(CmosRtcTest, BinaryAnd12HourModesFollowStatusB) {
  set(kB, 0x04);  // binary, 12-hour
  EXPECT_EQ(get(kSec), 5);
  EXPECT_EQ(get(kHour), 0x80 | 3);  // 3 PM
  EXPECT_EQ(get(kYear), 26);
  EXPECT_EQ(get(CmosRtc::kCenturyRegister), 20);
  set(kB, 0x00);  // BCD, 12-hour
  EXPECT_EQ(get(kHour), 0x83);
  now_ = utc(2026, 12, 2, 0, 30, 0);  // 12:30 AM
  EXPECT_EQ(get(kHour), 0x12);
  now_ = utc(2026, 12, 2, 12, 30, 0);  // 12:30 PM
  EXPECT_EQ(get(kHour), 0x92);
}

TEST_F(CmosRtcTest, StatusANeverShowsAnUpdateInProgressAndStatusDSaysTheTimeIsValid) {
  EXPECT_EQ(get(kA), 0x26);
  set(kA, 0xa6);  // UIP is read-only
  EXPECT_EQ(get(kA), 0x26);
  for (int i = 0; i < 1000; ++i) {
    now_ += kSecond / 1000;
    EXPECT_EQ(get(kA) & 0x80, 0);
  }
  EXPECT_EQ(get(kD), 0x80);
  set(kD, 0x00);
  EXPECT_EQ(get(kD), 0x80);
}

TEST_F(CmosRtcTest, TheNmiMaskBitOfTheIndexIsIgnored) {
  uint8_t index = 0x80 | kMin, v = 0;
  rtc_.write(0, std::span<const uint8_t>(&index, 1));
  rtc_.read(1, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v, 0x04);
}

TEST_F(CmosRtcTest, SettingTheTimeWithSetHoldsItAndStartsItWhenSetIsCleared) {
  set(kB, 0x82);  // SET, 24-hour, BCD
  set(kYear, 0x30);
  set(kMonth, 0x01);
  set(kMday, 0x31);
  set(kHour, 0x23);
  set(kMin, 0x59);
  set(kSec, 0x58);
  now_ += 10 * kSecond;  // held: the time does not run
  EXPECT_EQ(get(kSec), 0x58);
  EXPECT_EQ(get(kYear), 0x30);
  set(kB, 0x02);
  EXPECT_EQ(get(kSec), 0x58);
  now_ += 2 * kSecond;
  EXPECT_EQ(get(kSec), 0x00);
  EXPECT_EQ(get(kMin), 0x00);
  EXPECT_EQ(get(kHour), 0x00);
  EXPECT_EQ(get(kMday), 0x01);
  EXPECT_EQ(get(kMonth), 0x02);
  EXPECT_EQ(get(kYear), 0x30);
  EXPECT_EQ(get(kDow), 0x06);  // Friday 2030-02-01
}

TEST_F(CmosRtcTest, ATimeRegisterWrittenWithoutSetTakesEffectAtOnce) {
  set(kMin, 0x30);
  EXPECT_EQ(get(kMin), 0x30);
  EXPECT_EQ(get(kSec), 0x05);
  EXPECT_EQ(get(kHour), 0x15);
  set(CmosRtc::kCenturyRegister, 0x21);
  EXPECT_EQ(get(CmosRtc::kCenturyRegister), 0x21);
  EXPECT_EQ(get(kYear), 0x26);
  now_ += kSecond;
  EXPECT_EQ(get(kSec), 0x06);
}

TEST_F(CmosRtcTest, TheUpdateFlagRaisesIrq8OnlyWithUieAndReadingStatusCClearsIt) {
  set(kA, 0x20);  // rate 0: no periodic flag in the way
  now_ += kSecond;
  rtc_.poll();
  EXPECT_FALSE(irq_.level);
  EXPECT_EQ(get(kC), 0x10);  // UF without its interrupt
  EXPECT_EQ(get(kC), 0x00);
  set(kB, 0x12);  // UIE
  rtc_.poll();
  EXPECT_FALSE(irq_.level);  // no second has passed
  now_ += kSecond;
  rtc_.poll();
  EXPECT_TRUE(irq_.level);
  EXPECT_EQ(get(kC), 0x90);
  EXPECT_FALSE(irq_.level);
  EXPECT_EQ(get(kC), 0x00);
}

TEST_F(CmosRtcTest, TheAlarmFiresWhenHoursMinutesAndSecondsMatch) {
  set(kA, 0x20);
  set(kHourAlarm, 0x15);
  set(kMinAlarm, 0x04);
  set(kSecAlarm, 0x07);
  set(kB, 0x22);    // AIE
  now_ += kSecond;  // 15:04:06
  rtc_.poll();
  EXPECT_FALSE(irq_.level);
  EXPECT_EQ(get(kC), 0x10);
  now_ += kSecond;  // 15:04:07
  rtc_.poll();
  EXPECT_TRUE(irq_.level);
  EXPECT_EQ(get(kC), 0xb0);
  // Nothing matches in the hour after; a day later the alarm has passed while nobody looked.
  now_ += 3600 * kSecond;
  EXPECT_EQ(get(kC), 0x10);
  now_ += 23 * 3600 * kSecond;
  EXPECT_EQ(get(kC), 0xb0);
}

TEST_F(CmosRtcTest, AnAlarmOfDontCareValuesMatchesEverySecond) {
  set(kA, 0x20);
  set(kHourAlarm, 0xc0);
  set(kMinAlarm, 0xff);
  set(kSecAlarm, 0xc5);
  set(kB, 0x22);
  for (int i = 0; i < 3; ++i) {
    now_ += kSecond;
    rtc_.poll();
    EXPECT_TRUE(irq_.level);
    EXPECT_EQ(get(kC), 0xb0);
  }
}

TEST_F(CmosRtcTest, ThePeriodicFlagFollowsTheRateOfStatusA) {
  // The BIOS's 1024 Hz rate sets PF as soon as time passes, whether PIE is on or not.
  now_ += kSecond / 100;
  EXPECT_EQ(get(kC), 0x40);
  now_ -= kSecond / 100;  // (the host's clock going back is no event)
  set(kA, 0x2f);          // rate 15: 2 Hz
  EXPECT_EQ(get(kC), 0x00);
  now_ += kSecond / 2;
  set(kB, 0x42);  // PIE
  EXPECT_TRUE(irq_.level);
  EXPECT_EQ(get(kC), 0xc0);
  now_ += kSecond / 4;  // 15:04:06.00: a new second and a new half-second period
  EXPECT_EQ(get(kC), 0xd0);
  now_ += kSecond / 4;  // 15:04:06.25: neither
  EXPECT_EQ(get(kC), 0x00);
  set(kA, 0x20);  // rate 0: none
  now_ += 10 * kSecond;
  EXPECT_EQ(get(kC), 0x10);  // UF only, and UIE is off
}

TEST_F(CmosRtcTest, WideAccessesAndReadsOfTheIndexPortReadAllOnesAndChangeNothing) {
  uint8_t v = 0;
  rtc_.read(0, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v, 0xff);
  uint8_t wide[2] = {kSec, 0x59};
  rtc_.write(0, wide);
  uint8_t out[4] = {};
  rtc_.read(0, out);
  for (uint8_t b : out) EXPECT_EQ(b, 0xff);
  EXPECT_EQ(get(kSec), 0x05);
}

// Hostile guest (docs/security.md): every index byte, 0x00 to 0xff, written and read. The index
// keeps seven bits, so each names one of the 128 registers; writing 0xff everywhere except to the
// clock's own registers leaves the clock right, and the battery-backed RAM holds what was written.
TEST_F(CmosRtcTest, AHostileIndexNamesOneOfTheRegistersAndNothingElse) {
  for (int i = 0; i <= 0xff; ++i) {
    uint8_t index = static_cast<uint8_t>(i), v = 0;
    rtc_.write(0, std::span<const uint8_t>(&index, 1));
    rtc_.read(1, std::span<uint8_t>(&v, 1));
    uint8_t masked = index & 0x7f;
    if (masked >= 0x0e && masked != CmosRtc::kCenturyRegister) {
      uint8_t value = 0xff;
      rtc_.write(1, std::span<const uint8_t>(&value, 1));
    }
  }
  EXPECT_EQ(get(0x7f), 0xff);
  EXPECT_EQ(get(0x0e), 0xff);
  EXPECT_EQ(get(kSec), 0x05);
  EXPECT_EQ(get(kYear), 0x26);
  EXPECT_EQ(get(kB), 0x02);
  // Nonsense in the time registers (invalid BCD digits, a month 0xff) becomes some valid time.
  set(kMonth, 0xff);
  set(kSec, 0xff);
  uint8_t month = get(kMonth), sec = get(kSec);
  EXPECT_GE(month, 0x01);
  EXPECT_LE(month, 0x12);
  EXPECT_LE(sec, 0x59);
}

TEST(CmosRtcThread, TheUpdateInterruptArrivesOnItsOwnWithinASecond) {
  FakeIrq irq;
  CmosRtc rtc(irq);
  uint8_t b = 0x0b, uie = 0x12;
  rtc.write(0, std::span<const uint8_t>(&b, 1));
  rtc.write(1, std::span<const uint8_t>(&uie, 1));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (!irq.level && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(irq.level);
  // Reading status C lowers the line, and the next second raises it again.
  uint8_t c = 0x0c, v = 0;
  rtc.write(0, std::span<const uint8_t>(&c, 1));
  rtc.read(1, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v & 0x90, 0x90);
  EXPECT_FALSE(irq.level);
  deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (!irq.level && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(irq.level);
}

TEST(CmosRtcThread, ReadsTheHostsClock) {
  FakeIrq irq;
  CmosRtc rtc(irq);
  auto get = [&](uint8_t index) {
    uint8_t v = 0;
    rtc.write(0, std::span<const uint8_t>(&index, 1));
    rtc.read(1, std::span<uint8_t>(&v, 1));
    return (v >> 4) * 10 + (v & 0x0f);
  };
  for (int attempt = 0; attempt < 3; ++attempt) {
    time_t t = ::time(nullptr);
    tm tm{};
    ::gmtime_r(&t, &tm);
    int min = get(0x02), hour = get(0x04), year = get(0x09);
    if (min == tm.tm_min) {  // else a minute passed between the two readings: try again
      EXPECT_EQ(hour, tm.tm_hour);
      EXPECT_EQ(year, tm.tm_year % 100);
      return;
    }
  }
  ADD_FAILURE() << "the RTC's minutes never matched the host's";
}

// A snapshot's RTC (issue 13): the registers and the guest's offset from the host clock come
// back, so the guest's time goes on from the host's; the index stays within the 128 registers
// and VRT stays set whatever the bytes say.
TEST_F(CmosRtcTest, SavedStateLoadsIntoAnotherRtcWithItsChecks) {
  set(kHour, 0x09);  // the guest sets its clock back six hours
  set(0x40, 0x5a);   // battery-backed RAM
  StateWriter w;
  rtc_.save(w);
  std::vector<uint8_t> bytes = w.take();
  FakeIrq irq;
  CmosRtc other{irq, [this] { return now_; }, CmosRtc::Timer::Manual};
  auto get_other = [&](uint8_t index) {
    uint8_t v = 0;
    other.write(0, std::span<const uint8_t>(&index, 1));
    other.read(1, std::span<uint8_t>(&v, 1));
    return v;
  };
  StateReader r(bytes, "cmos");
  other.load(r);
  ASSERT_TRUE(r.finish().ok());
  EXPECT_EQ(get_other(kHour), 0x09);
  EXPECT_EQ(get_other(0x40), 0x5a);
  bytes[0] = 0xff;       // the index
  bytes[1 + kD] = 0x00;  // status D without VRT
  StateReader bad(bytes, "cmos");
  other.load(bad);
  ASSERT_TRUE(bad.finish().ok());
  // A data write goes to register 0x7f: the index was kept to 7 bits.
  uint8_t value = 0x33;
  other.write(1, std::span<const uint8_t>(&value, 1));
  EXPECT_EQ(get_other(0x7f), 0x33);
  EXPECT_EQ(get_other(kD), 0x80);
}

}  // namespace
}  // namespace ember::devices
