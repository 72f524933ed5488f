// FileOps: small-file reads, whole writes and mkdir -p for the guest init.
#include "vmm/init/FileOps.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ember::init {

InitResult<OwnedFd> openFile(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    return InitError::fromErrno("opening " + path);
  }
  return OwnedFd(fd);
}

InitResult<std::string> readAll(int fd, size_t max_bytes) {
  std::string data;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return InitError::fromErrno("read");
    }
    if (n == 0) {
      return data;
    }
    if (data.size() + static_cast<size_t>(n) > max_bytes) {
      return InitError{"more than " + std::to_string(max_bytes) + " bytes"};
    }
    data.append(buffer, static_cast<size_t>(n));
  }
}

InitResult<std::string> readFile(const std::string& path, size_t max_bytes) {
  InitResult<OwnedFd> fd = openFile(path, O_RDONLY);
  if (!fd.ok()) {
    return fd.error();
  }
  InitResult<std::string> data = readAll(fd.value().get(), max_bytes);
  if (!data.ok()) {
    return InitError{"reading " + path + ": " + data.error().message};
  }
  return data;
}

InitResult<void> writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return InitError::fromErrno("write");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

InitResult<void> makeDirectories(const std::string& path, mode_t mode) {
  // Each prefix ending before a '/' (after the first character), then the path itself.
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), mode) != 0) {
      struct stat st {};
      int err = errno;
      if (err != EEXIST) {
        return InitError::fromErrno("creating directory " + prefix, err);
      }
      if (::stat(prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return InitError::fromErrno("creating directory " + prefix, ENOTDIR);
      }
    }
    if (slash == std::string::npos) {
      return {};
    }
  }
}

}  // namespace ember::init
