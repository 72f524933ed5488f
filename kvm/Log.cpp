// The spdlog-backed implementation of the logging facade (the only file including spdlog).
#include "kvm/Log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace ember::log {

namespace {

std::shared_ptr<spdlog::logger> makeLogger() {
  // Logs go to stderr only; stdout carries the guest console.
  auto logger = spdlog::stderr_logger_mt("ember");
  logger->set_pattern("ember: %l: %v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = makeLogger();
  return *instance;
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
  logger().set_level(toSpd(level));
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
