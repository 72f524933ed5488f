// ExecStatus: the status line's encoding and parsing, and the host's exit-status mapping.
#include "vmm/init/ExecStatus.h"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>

#include "vmm/init/InitError.h"

namespace ember::init {
namespace {

struct KindSpec {
  ExecStatus::Kind kind;
  std::string_view word;
  int min;
  int max;
};

// The value ranges: exit(3) keeps the low 8 bits; Linux signals are 1..64 (SIGRTMAX); errno
// values are below 4096 (the kernel returns -4095..-1 as errors, include/linux/err.h).
constexpr std::array<KindSpec, 3> kNumeric = {{
    {ExecStatus::Kind::Exited, "exit", 0, 255},
    {ExecStatus::Kind::Signaled, "signal", 1, 64},
    {ExecStatus::Kind::ExecFailed, "exec-failed", 1, 4095},
}};
constexpr std::string_view kSetupError = "setup-error";

// Canonical decimal: digits only, no leading zero.
bool parseNumber(std::string_view text, int* value) {
  if (text.empty() || (text.size() > 1 && text.front() == '0') ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

ExecStatus ExecStatus::setupError(std::string_view message) {
  std::string line(message);
  std::replace_if(
      line.begin(), line.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return ExecStatus(Kind::SetupError, 0, std::move(line));
}

std::optional<ExecStatus> ExecStatus::fromWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return exited(WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return signaled(WTERMSIG(wait_status));
  }
  return std::nullopt;
}

std::string ExecStatus::encode() const {
  if (kind_ == Kind::SetupError) {
    return std::string(kSetupError) + " " + message_ + "\n";
  }
  for (const KindSpec& spec : kNumeric) {
    if (spec.kind == kind_) {
      return std::string(spec.word) + " " + std::to_string(value_) + "\n";
    }
  }
  return {};  // unreachable: every kind is above
}

std::optional<ExecStatus> ExecStatus::parse(std::string_view line, std::string* error) {
  if (line.empty() || line.back() != '\n') {
    setError(error, "status line does not end in a newline");
    return std::nullopt;
  }
  line.remove_suffix(1);
  if (line.find('\n') != std::string_view::npos) {
    setError(error, "status has more than one line");
    return std::nullopt;
  }
  size_t space = line.find(' ');
  if (space == std::string_view::npos) {
    setError(error, "status line \"" + std::string(line) + "\" has no value");
    return std::nullopt;
  }
  std::string_view word = line.substr(0, space);
  std::string_view rest = line.substr(space + 1);
  if (word == kSetupError) {
    return setupError(rest);
  }
  for (const KindSpec& spec : kNumeric) {
    if (word != spec.word) {
      continue;
    }
    int value = 0;
    if (!parseNumber(rest, &value) || value < spec.min || value > spec.max) {
      setError(error, "status \"" + std::string(word) + "\" needs a number from " +
                          std::to_string(spec.min) + " to " + std::to_string(spec.max) +
                          ", not \"" + std::string(rest) + "\"");
      return std::nullopt;
    }
    return ExecStatus(spec.kind, value, {});
  }
  setError(error, "unknown status \"" + std::string(word) + "\"");
  return std::nullopt;
}

int exitStatusFor(const ExecStatus& status) {
  switch (status.kind()) {
    case ExecStatus::Kind::Exited:
      return status.value();
    case ExecStatus::Kind::Signaled:
      return 128 + status.value();
    case ExecStatus::Kind::ExecFailed:
      return status.value() == ENOENT ? 127 : 126;
    case ExecStatus::Kind::SetupError:
      break;
  }
  return 125;
}

}  // namespace ember::init
