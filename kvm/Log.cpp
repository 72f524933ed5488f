// The spdlog-backed implementation of the logging facade (the only file including spdlog).
#include "kvm/Log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

namespace ember::log {

namespace {

// The second destination (setLineSink): formatted lines handed to a function. spdlog's
// base_sink holds mutex_ around sink_it_ and set_pattern, so the function is changed under it.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void setWrite(std::function<void(std::string_view)> write) {
    std::lock_guard lock(mutex_);
    write_ = std::move(write);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!write_) return;
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string_view line(buf.data(), buf.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    write_(line);
  }
  void flush_() override {}

 private:
  std::function<void(std::string_view)> write_;
};

struct Logger {
  Logger()
      : stderr_sink(std::make_shared<spdlog::sinks::stderr_sink_mt>()),
        line_sink(std::make_shared<LineSink>()),
        logger("ember", {stderr_sink, line_sink}) {
    // stdout carries the guest console: logs go to stderr (and the line sink once set).
    stderr_sink->set_pattern("ember: %l: %v");
    stderr_sink->set_level(spdlog::level::info);
    line_sink->set_level(spdlog::level::off);
    logger.set_level(spdlog::level::info);
    logger.flush_on(spdlog::level::trace);
  }
  // The logger lets through what either sink wants; each sink filters for itself.
  void updateLevel() { logger.set_level(std::min(stderr_sink->level(), line_sink->level())); }
  std::shared_ptr<spdlog::sinks::stderr_sink_mt> stderr_sink;
  std::shared_ptr<LineSink> line_sink;
  spdlog::logger logger;
};

Logger& instance() {
  static Logger l;
  return l;
}

spdlog::logger& logger() {
  return instance().logger;
}

spdlog::level::level_enum toSpd(Level l) {
  switch (l) {
    case Level::Trace:
      return spdlog::level::trace;
    case Level::Debug:
      return spdlog::level::debug;
    case Level::Info:
      return spdlog::level::info;
    case Level::Warn:
      return spdlog::level::warn;
    case Level::Error:
      return spdlog::level::err;
    case Level::Off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::mutex capture_mutex;
std::vector<std::string>* capture_lines = nullptr;
Level capture_min = Level::Off;

}  // namespace

bool parseLevel(std::string_view text, Level* out) {
  static constexpr std::pair<std::string_view, Level> kNames[] = {
      {"trace", Level::Trace}, {"debug", Level::Debug}, {"info", Level::Info},
      {"warn", Level::Warn},   {"error", Level::Error}, {"off", Level::Off}};
  for (const auto& [name, level] : kNames) {
    if (text == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void setLevel(Level level) {
  instance().stderr_sink->set_level(toSpd(level));
  instance().updateLevel();
}

void setLineSink(std::function<void(std::string_view)> write, Level level, bool show_level,
                 std::string_view tag) {
  Logger& l = instance();
  if (!write) {
    l.line_sink->set_level(spdlog::level::off);
    l.updateLevel();
    l.line_sink->setWrite({});
    return;
  }
  std::string literal_tag;  // a '%' in the tag is a literal one in spdlog's pattern
  for (char c : tag) literal_tag += c == '%' ? std::string("%%") : std::string(1, c);
  // The time in UTC to the microsecond, as Firecracker's log lines begin.
  l.line_sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      fmt::format("%Y-%m-%dT%H:%M:%S.%f [{}{}] %v", literal_tag, show_level ? ":%l" : ""),
      spdlog::pattern_time_type::utc));
  l.line_sink->setWrite(std::move(write));
  l.line_sink->set_level(toSpd(level));
  l.updateLevel();
}

bool enabled(Level level) {
  if (logger().should_log(toSpd(level))) {
    return true;
  }
  std::lock_guard lock(capture_mutex);
  return capture_lines != nullptr && level >= capture_min;
}

void write(Level level, std::string_view message) {
  {
    std::lock_guard lock(capture_mutex);
    if (capture_lines != nullptr && level >= capture_min) {
      capture_lines->emplace_back(message);
    }
  }
  logger().log(toSpd(level), "{}", message);
}

namespace {
std::vector<std::string> captured;
}

ScopedLogCapture::ScopedLogCapture(Level min) : previous_level_(Level::Info) {
  std::lock_guard lock(capture_mutex);
  captured.clear();
  capture_lines = &captured;
  capture_min = min;
}

ScopedLogCapture::~ScopedLogCapture() {
  std::lock_guard lock(capture_mutex);
  capture_lines = nullptr;
  capture_min = Level::Off;
}

std::vector<std::string> ScopedLogCapture::lines() const {
  std::lock_guard lock(capture_mutex);
  return captured;
}

bool ScopedLogCapture::contains(std::string_view needle) const {
  std::lock_guard lock(capture_mutex);
  for (const auto& l : captured) {
    if (l.find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace ember::log
