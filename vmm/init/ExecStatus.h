// ExecStatus: how the guest's command ended, as the one line the init writes on the status port,
// and the exit status `ember exec` gives for it.
//
//   exit N\n           the command exited with N (0..255)
//   signal N\n         the command was killed by signal N (1..64)
//   exec-failed E\n    execve(2) of the command failed with errno E (1..4095)
//   setup-error M\n    the init could not set up; M is one line (newlines become spaces)
//
// exitStatusFor() follows timeout(1) and `docker run`: N for an exit, 128+N for a signal, 127
// when the command was not found (ENOENT), 126 when it could not be executed otherwise, and 125
// when the init failed before the command could run. Depends on the standard library only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ember::init {

class ExecStatus {
 public:
  enum class Kind { Exited, Signaled, ExecFailed, SetupError };

  static ExecStatus exited(int code) { return ExecStatus(Kind::Exited, code, {}); }
  static ExecStatus signaled(int signal) { return ExecStatus(Kind::Signaled, signal, {}); }
  static ExecStatus execFailed(int err) { return ExecStatus(Kind::ExecFailed, err, {}); }
  // Newlines (and carriage returns) in the message become spaces: the status is one line.
  static ExecStatus setupError(std::string_view message);
  // A wait status from waitpid(2): WIFEXITED -> exited, WIFSIGNALED -> signaled. Any other
  // (stopped, continued) is not an end and gives nullopt.
  static std::optional<ExecStatus> fromWaitStatus(int wait_status);

  Kind kind() const { return kind_; }
  // The exit code, signal number or errno; 0 for a setup error.
  int value() const { return value_; }
  const std::string& message() const { return message_; }

  bool operator==(const ExecStatus&) const = default;

  // The line, with its trailing newline.
  std::string encode() const;
  // Parses one line (with its trailing newline, and no other); on failure returns nullopt and
  // sets *error (if given).
  static std::optional<ExecStatus> parse(std::string_view line, std::string* error);

 private:
  ExecStatus(Kind kind, int value, std::string message)
      : kind_(kind), value_(value), message_(std::move(message)) {}

  Kind kind_;
  int value_;
  std::string message_;
};

// ember exec's exit status for the command's end (see the file comment).
int exitStatusFor(const ExecStatus& status);

}  // namespace ember::init
