// Guest port output into a file.
#include "devices/FilePort.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "kvm/Log.h"

namespace ember::devices {

Result<std::unique_ptr<FilePort>> FilePort::create(const std::string& path, uint64_t limit) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return Error::fromErrno(Errc::Io, fmt::format("--serial-port file:{}: cannot create it", path));
  }
  return std::unique_ptr<FilePort>(new FilePort(path, std::move(fd), limit));
}

void FilePort::write(std::span<const uint8_t> bytes) {
  if (limit_ != 0) {
    uint64_t room = limit_ - written_;
    if (bytes.size() > room) {
      dropped_ += bytes.size() - room;
      bytes = bytes.first(static_cast<size_t>(room));
    }
    written_ += bytes.size();
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (failed_ == 0) {
        log::warn("--serial-port file:{}: {}; the guest's output to it is lost", path_,
                  n < 0 ? std::strerror(errno) : "short write");
      }
      failed_ += bytes.size() - done;
      return;
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace ember::devices
