// Ember's logging facade: levelled, formatted messages on stderr, and on a second line
// destination once one is set (PUT /logger's log_path).
//
// spdlog does the work but only Log.cpp includes it, so the rest of the code pays for {fmt}
// formatting alone. Tests can capture messages (hostile-guest cases require a warn-level line
// naming the device and the rule broken) with ScopedLogCapture.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember::log {

enum class Level { Trace, Debug, Info, Warn, Error, Off };

// Parses "trace", "debug", "info", "warn", "error" or "off"; false if unknown.
bool parseLevel(std::string_view text, Level* out);
// The level of stderr's messages (--log-level, or PUT /logger's level without a log_path).
void setLevel(Level level);
bool enabled(Level level);

// A second destination besides stderr: every message at LEVEL or above becomes one line,
// "2026-12-03T12:00:00.123456 [TAG] message" ("[TAG:level]" with SHOW_LEVEL), handed without
// its newline to WRITE, one line at a time, on the thread that logs it. WRITE must not block or
// log. An empty WRITE takes the destination away (before what WRITE writes to goes).
void setLineSink(std::function<void(std::string_view)> write, Level level, bool show_level,
                 std::string_view tag);
void write(Level level, std::string_view message);

template <typename... Args>
void at(Level level, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level)) {
    write(level, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Trace, f, std::forward<Args>(a)...);
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Debug, f, std::forward<Args>(a)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Info, f, std::forward<Args>(a)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Warn, f, std::forward<Args>(a)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) {
  at(Level::Error, f, std::forward<Args>(a)...);
}

// Bounds how often a guest-triggerable message is logged: the first `burst` occurrences, then
// one in every `every` (with the count), so a hostile guest cannot flood the log.
class RateLimit {
 public:
  explicit RateLimit(uint64_t burst = 10, uint64_t every = 1000) : burst_(burst), every_(every) {}
  // True when this occurrence should be logged; `*seen` receives the occurrence number.
  bool allow(uint64_t* seen = nullptr) {
    uint64_t n = count_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (seen != nullptr) *seen = n;
    return n <= burst_ || n % every_ == 0;
  }

 private:
  uint64_t burst_, every_;
  std::atomic<uint64_t> count_{0};
};

// While alive, every message at `min` or above is also appended to `lines` (tests).
class ScopedLogCapture {
 public:
  explicit ScopedLogCapture(Level min = Level::Warn);
  ~ScopedLogCapture();
  ScopedLogCapture(const ScopedLogCapture&) = delete;
  ScopedLogCapture& operator=(const ScopedLogCapture&) = delete;
  std::vector<std::string> lines() const;
  bool contains(std::string_view needle) const;

 private:
  Level previous_level_;
};

}  // namespace ember::log
