// MC146818A real-time clock (see CmosRtc.h; register names and bits from the MC146818A data
// sheet, "Address map" and "Register A" to "Register D").
#include "devices/CmosRtc.h"

#include <time.h>

#include <algorithm>

namespace ember::devices {

namespace {
constexpr uint64_t kIndexPort = 0, kDataPort = 1;
constexpr uint8_t kSeconds = 0x00, kSecondsAlarm = 0x01, kMinutes = 0x02, kMinutesAlarm = 0x03,
                  kHours = 0x04, kHoursAlarm = 0x05, kDayOfWeek = 0x06, kDayOfMonth = 0x07,
                  kMonth = 0x08, kYear = 0x09, kStatusA = 0x0a, kStatusB = 0x0b, kStatusC = 0x0c,
                  kStatusD = 0x0d;
constexpr uint8_t kAUip = 0x80;
constexpr uint8_t kBSet = 0x80, kBPie = 0x40, kBAie = 0x20, kBUie = 0x10, kBDm = 0x04, kB24h = 0x02;
constexpr uint8_t kCIrqf = 0x80, kCFlags = 0x70, kCPf = 0x40, kCAf = 0x20, kCUf = 0x10;
constexpr uint8_t kDVrt = 0x80;
constexpr uint8_t kAlarmDontCare = 0xc0;  // 0xc0-0xff in an alarm register matches any value
constexpr uint8_t kHoursPm = 0x80;
constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t kSecondsPerDay = 86'400;

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

bool isTimeRegister(uint8_t index) {
  return index == kSeconds || index == kMinutes || index == kHours || index == kDayOfWeek ||
         index == kDayOfMonth || index == kMonth || index == kYear ||
         index == CmosRtc::kCenturyRegister;
}
}  // namespace

int64_t CmosRtc::hostClock() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSecond + ts.tv_nsec;
}

CmosRtc::CmosRtc(InterruptLine& irq, Clock clock, Timer timer)
    : irq_(irq), clock_(std::move(clock)) {
  ram_[kStatusA] = 0x26;  // 32.768 kHz time base, 1024 Hz periodic rate: what a PC BIOS sets
  ram_[kStatusB] = kB24h;
  ram_[kStatusD] = kDVrt;
  last_advance_ns_ = clock_();
  if (timer == Timer::Thread) {
    thread_ = std::thread([this] { interruptThread(); });
  }
}

CmosRtc::~CmosRtc() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (data.size() != 1 || offset != kDataPort) {
    return;  // the index port is write-only
  }
  std::lock_guard lock(mutex_);
  data[0] = readRegister(index_, clock_());
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset == kIndexPort) {
    index_ = data[0] & 0x7f;  // bit 7: the PC's NMI mask, not the clock's
  } else if (offset == kDataPort) {
    writeRegister(index_, data[0], clock_());
  }
}

void CmosRtc::poll() {
  std::lock_guard lock(mutex_);
  advance(clock_());
  updateIrq();
}

uint8_t CmosRtc::readRegister(uint8_t index, int64_t now) {
  if (isTimeRegister(index)) {
    bool held = (ram_[kStatusB] & kBSet) != 0;
    int64_t seconds = held ? held_seconds_ : floorDiv(guestNs(now), kNsPerSecond);
    uint8_t century = 0;
    auto regs = encodeTime(seconds, century);
    return index == kCenturyRegister ? century : regs[index];
  }
  switch (index) {
    case kStatusA:
      return ram_[kStatusA] & ~kAUip;  // never in an update: the time is computed when read
    case kStatusC: {
      advance(now);
      // IRQF as of now, without raising the line for the moment until the read lowers it.
      uint8_t c = ram_[kStatusC];
      if ((c & ram_[kStatusB] & kCFlags) != 0) {
        c |= kCIrqf;
      }
      ram_[kStatusC] = 0;
      updateIrq();
      wake_.notify_all();  // the line is low again: the thread watches for the next event
      return c;
    }
    case kStatusD:
      return kDVrt;
    default:
      return ram_[index];  // the alarms, status B and the battery-backed RAM
  }
}

void CmosRtc::writeRegister(uint8_t index, uint8_t value, int64_t now) {
  if (isTimeRegister(index)) {
    if ((ram_[kStatusB] & kBSet) != 0) {
      held_seconds_ = withField(held_seconds_, index, value);
    } else {
      advance(now);
      int64_t seconds = floorDiv(guestNs(now), kNsPerSecond);
      offset_ns_ += (withField(seconds, index, value) - seconds) * kNsPerSecond;
      last_advance_ns_ = now;  // the jump itself is no update, alarm or periodic event
    }
    return;
  }
  switch (index) {
    case kStatusA:
      advance(now);
      ram_[kStatusA] = value & ~kAUip;
      break;
    case kStatusB: {
      advance(now);
      bool was_set = (ram_[kStatusB] & kBSet) != 0, set = (value & kBSet) != 0;
      if (set && !was_set) {
        held_seconds_ = floorDiv(guestNs(now), kNsPerSecond);
      } else if (!set && was_set) {
        // The held time starts now, at the beginning of its second.
        offset_ns_ = held_seconds_ * kNsPerSecond - now;
        last_advance_ns_ = now;
      }
      // Data sheet, register B: setting SET clears UIE.
      ram_[kStatusB] = set ? static_cast<uint8_t>(value & ~kBUie) : value;
      updateIrq();
      break;
    }
    case kStatusC:
    case kStatusD:
      break;  // read-only
    default:
      ram_[index] = value;  // the alarms and the battery-backed RAM
      break;
  }
  wake_.notify_all();
}

uint8_t CmosRtc::encode(int value) const {
  if ((ram_[kStatusB] & kBDm) != 0) {
    return static_cast<uint8_t>(value);
  }
  return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

int CmosRtc::decode(uint8_t value) const {
  if ((ram_[kStatusB] & kBDm) != 0) {
    return value;
  }
  return (value >> 4) * 10 + (value & 0x0f);  // invalid BCD digits decode to out-of-range values
}

uint8_t CmosRtc::encodeHours(int hours) const {
  if ((ram_[kStatusB] & kB24h) != 0) {
    return encode(hours);
  }
  int h12 = hours % 12 == 0 ? 12 : hours % 12;
  return static_cast<uint8_t>(encode(h12) | (hours >= 12 ? kHoursPm : 0));
}

int CmosRtc::decodeHours(uint8_t value) const {
  if ((ram_[kStatusB] & kB24h) != 0) {
    return decode(value);
  }
  return decode(value & ~kHoursPm) % 12 + ((value & kHoursPm) != 0 ? 12 : 0);
}

std::array<uint8_t, 10> CmosRtc::encodeTime(int64_t guest_seconds, uint8_t& century) const {
  time_t t = static_cast<time_t>(guest_seconds);
  tm tm{};
  ::gmtime_r(&t, &tm);
  int year = tm.tm_year + 1900;
  century = encode(year / 100 % 100);
  std::array<uint8_t, 10> r{};
  r[kSeconds] = encode(tm.tm_sec);
  r[kSecondsAlarm] = ram_[kSecondsAlarm];
  r[kMinutes] = encode(tm.tm_min);
  r[kMinutesAlarm] = ram_[kMinutesAlarm];
  r[kHours] = encodeHours(tm.tm_hour);
  r[kHoursAlarm] = ram_[kHoursAlarm];
  r[kDayOfWeek] = encode(tm.tm_wday + 1);  // 1 is Sunday
  r[kDayOfMonth] = encode(tm.tm_mday);
  r[kMonth] = encode(tm.tm_mon + 1);
  r[kYear] = encode(year % 100);
  return r;
}

int64_t CmosRtc::withField(int64_t guest_seconds, uint8_t index, uint8_t value) const {
  time_t t = static_cast<time_t>(guest_seconds);
  tm tm{};
  ::gmtime_r(&t, &tm);
  int year = tm.tm_year + 1900;
  switch (index) {
    case kSeconds:
      tm.tm_sec = decode(value);
      break;
    case kMinutes:
      tm.tm_min = decode(value);
      break;
    case kHours:
      tm.tm_hour = decodeHours(value);
      break;
    case kDayOfMonth:
      tm.tm_mday = decode(value);
      break;
    case kMonth:
      tm.tm_mon = decode(value) - 1;
      break;
    case kYear:
      tm.tm_year = year / 100 * 100 + decode(value) - 1900;
      break;
    case kCenturyRegister:
      tm.tm_year = decode(value) * 100 + year % 100 - 1900;
      break;
    default:
      return guest_seconds;  // the day of the week follows from the date
  }
  // Each field is at most 255 after decoding, so timegm's normalisation (a 61st second, a 13th
  // month) cannot overflow; a guest's nonsense becomes some valid time.
  return static_cast<int64_t>(::timegm(&tm));
}

bool CmosRtc::alarmMatches(int64_t guest_seconds) const {
  uint8_t century = 0;
  auto now = encodeTime(guest_seconds, century);
  auto match = [&](uint8_t alarm, uint8_t field) {
    return (ram_[alarm] & kAlarmDontCare) == kAlarmDontCare || ram_[alarm] == now[field];
  };
  return match(kSecondsAlarm, kSeconds) && match(kMinutesAlarm, kMinutes) &&
         match(kHoursAlarm, kHours);
}

int64_t CmosRtc::periodicNs() const {
  // Data sheet, "Periodic interrupt rate": rate 0 is none, 1 and 2 are 256 and 128 Hz, and rate
  // n from 3 to 15 is 32768 / 2^(n-1) Hz (8192 Hz to 2 Hz). The rates of the 32.768 kHz time
  // base are used whatever the divider bits say.
  int rate = ram_[kStatusA] & 0x0f;
  if (rate == 0) {
    return 0;
  }
  int shift = rate <= 2 ? rate + 6 : rate - 1;
  return (kNsPerSecond << shift) / 32768;
}

void CmosRtc::advance(int64_t now) {
  if (now <= last_advance_ns_) {
    return;
  }
  // Data sheet, register B: while SET is on the update cycle does not run.
  if ((ram_[kStatusB] & kBSet) == 0) {
    int64_t from = floorDiv(guestNs(last_advance_ns_), kNsPerSecond);
    int64_t to = floorDiv(guestNs(now), kNsPerSecond);
    if (to != from) {
      ram_[kStatusC] |= kCUf;
      // Every time of day comes once a day, so a day's seconds are enough to find a match.
      for (int64_t s = std::max(from + 1, to - kSecondsPerDay + 1); s <= to; ++s) {
        if (alarmMatches(s)) {
          ram_[kStatusC] |= kCAf;
          break;
        }
      }
    }
  }
  if (int64_t period = periodicNs(); period != 0) {
    if (floorDiv(guestNs(now), period) != floorDiv(guestNs(last_advance_ns_), period)) {
      ram_[kStatusC] |= kCPf;
    }
  }
  last_advance_ns_ = now;
}

void CmosRtc::updateIrq() {
  // Data sheet, register C: IRQF is set when a flag and its enable bit in register B are both
  // set, and the IRQ output is driven while IRQF is.
  if ((ram_[kStatusC] & ram_[kStatusB] & kCFlags) != 0) {
    ram_[kStatusC] |= kCIrqf;
  } else {
    ram_[kStatusC] &= ~kCIrqf;
  }
  bool level = (ram_[kStatusC] & kCIrqf) != 0;
  if (level != irq_level_) {
    irq_level_ = level;
    irq_.setLevel(level);
  }
}

int64_t CmosRtc::nextEventNs(int64_t now) const {
  uint8_t enabled = ram_[kStatusB] & (kBPie | kBAie | kBUie);
  // Nothing to raise, or the line is already high: the flags are brought up to date when status
  // C is read, and a guest that never reads it costs no wake-ups.
  if (enabled == 0 || irq_level_) {
    return -1;
  }
  int64_t next = -1;
  auto consider = [&](int64_t period) {
    int64_t at = (floorDiv(guestNs(now), period) + 1) * period - offset_ns_;
    next = next < 0 ? at : std::min(next, at);
  };
  if ((enabled & (kBAie | kBUie)) != 0 && (ram_[kStatusB] & kBSet) == 0) {
    consider(kNsPerSecond);
  }
  if ((enabled & kBPie) != 0 && periodicNs() != 0) {
    consider(periodicNs());
  }
  return next;
}

void CmosRtc::interruptThread() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    int64_t now = clock_();
    advance(now);
    updateIrq();
    int64_t next = nextEventNs(now);
    if (next < 0) {
      wake_.wait(lock);
    } else {
      wake_.wait_for(lock, std::chrono::nanoseconds(next - now));
    }
  }
}

void CmosRtc::save(StateWriter& w) const {
  std::lock_guard lock(mutex_);
  w.u8(index_);
  w.raw(ram_);
  w.u64(static_cast<uint64_t>(offset_ns_));
  w.u64(static_cast<uint64_t>(held_seconds_));
}

void CmosRtc::load(StateReader& r) {
  {
    std::lock_guard lock(mutex_);
    uint8_t index = r.u8("index");
    auto ram = r.raw(ram_.size(), "registers");
    auto offset = static_cast<int64_t>(r.u64("clock offset"));
    auto held = static_cast<int64_t>(r.u64("held time"));
    if (!r.ok()) return;
    index_ = index & 0x7f;  // as a write to port 0x70 keeps it
    std::copy(ram.begin(), ram.end(), ram_.begin());
    ram_[kStatusD] = kDVrt;  // always valid
    offset_ns_ = offset;
    held_seconds_ = held;
    last_advance_ns_ = clock_();
    updateIrq();
  }
  wake_.notify_all();
}

}  // namespace ember::devices
