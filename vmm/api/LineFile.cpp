// A line file: opened without blocking, written a line at a time (see LineFile.h).
#include "vmm/api/LineFile.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace ember::vmm::api {

Result<LineFile> LineFile::open(const std::string& path, std::string_view field) {
  if (path.empty()) return makeError(Errc::InvalidArgument, "{} is empty", field);
  int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) {
    if (errno == ENXIO) {
      return makeError(Errc::InvalidArgument,
                       "{} '{}' is a named pipe nobody reads; open its reading end first", field,
                       path);
    }
    return makeError(Errc::InvalidArgument, "{} '{}' cannot be opened: {}", field, path,
                     std::strerror(errno));
  }
  return LineFile(UniqueFd(fd), path);
}

Result<void> LineFile::writeLine(std::string_view line) {
  std::lock_guard lock(mutex_);
  std::string text(line);
  text += '\n';
  // A line is at most a few KiB: below PIPE_BUF or not, a regular file takes it whole, and a
  // pipe either takes it or says EAGAIN.
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd_.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && done == 0) {
      ++dropped_;
      return makeError(Errc::Busy, "{} is full (nobody reads it); the line is dropped", path_);
    }
    if (n <= 0) {
      return Error::fromErrno(Errc::Io, fmt::format("cannot write {}", path_));
    }
    done += static_cast<size_t>(n);
  }
  return okResult();
}

uint64_t LineFile::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

}  // namespace ember::vmm::api
