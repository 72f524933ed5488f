// ConsoleLog: the guest init's messages on the kernel console (/dev/console), each line
// prefixed `ember-init: `. Steps are logged only with the job's `verbose 1`; failures always,
// when there is no status port to carry them.
#pragma once

#include <string>
#include <string_view>

#include "vmm/init/OwnedFd.h"

namespace ember::init {

class ConsoleLog {
 public:
  // Logs nowhere (before /dev is mounted, or when the console cannot be opened).
  ConsoleLog() = default;
  // Opens the console write-only, never as the init's controlling terminal.
  static ConsoleLog open(const std::string& path);

  void setVerbose(bool verbose) { verbose_ = verbose; }
  // A step of the set-up, with verbose on.
  void step(std::string_view message) const;
  // A message whatever the verbosity.
  void always(std::string_view message) const;

 private:
  explicit ConsoleLog(OwnedFd fd) : fd_(std::move(fd)) {}

  OwnedFd fd_;
  bool verbose_ = false;
};

}  // namespace ember::init
