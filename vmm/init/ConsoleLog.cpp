// ConsoleLog: prefixed lines on the kernel console.
#include "vmm/init/ConsoleLog.h"

#include <fcntl.h>

#include "vmm/init/FileOps.h"

namespace ember::init {

ConsoleLog ConsoleLog::open(const std::string& path) {
  InitResult<OwnedFd> fd = openFile(path, O_WRONLY | O_NOCTTY);
  return fd.ok() ? ConsoleLog(std::move(fd).value()) : ConsoleLog();
}

void ConsoleLog::step(std::string_view message) const {
  if (verbose_) {
    always(message);
  }
}

void ConsoleLog::always(std::string_view message) const {
  if (!fd_.valid()) {
    return;
  }
  std::string line = "ember-init: ";
  line.append(message).push_back('\n');
  // Nothing is left to report a console that fails to the init.
  (void)writeAll(fd_.get(), line);
}

}  // namespace ember::init
