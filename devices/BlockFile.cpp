// Opening a disk image and probing O_DIRECT.
#include "devices/BlockFile.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace ember::devices {

Result<BlockFile> BlockFile::open(const std::string& path, bool read_only) {
  BlockFile f;
  f.path_ = path;
  f.read_only_ = read_only;
  int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    int err = errno;
    if (!read_only && (err == EACCES || err == EROFS || err == EPERM)) {
      return Error{Errc::InvalidArgument,
                   fmt::format("--disk {}: cannot open for writing ({}); add ',readonly' to "
                               "attach it read-only",
                               path, std::strerror(err)),
                   err};
    }
    return Error{err == ENOENT ? Errc::NotFound : Errc::Io,
                 fmt::format("--disk {}: {}", path, std::strerror(err)), err};
  }
  f.buffered_.reset(fd);
  struct stat st {};
  if (::fstat(fd, &st) < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("--disk {}: stat", path));
  }
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
      return Error::fromErrno(Errc::Io, fmt::format("--disk {}: BLKGETSIZE64", path));
    }
    f.size_ = bytes;
  } else if (S_ISREG(st.st_mode)) {
    f.size_ = static_cast<uint64_t>(st.st_size);
  } else {
    return makeError(Errc::InvalidArgument, "--disk {}: not a regular file or block device", path);
  }
  if (f.size_ < 512) {
    return makeError(Errc::InvalidArgument, "--disk {}: image is smaller than one 512-byte sector",
                     path);
  }

  // O_DIRECT where the file system supports it (tmpfs does not): probe the alignment with a
  // read of the first block.
  int dfd = ::open(path.c_str(), flags | O_DIRECT);
  if (dfd >= 0) {
    UniqueFd direct(dfd);
    for (uint32_t align : {512u, 4096u}) {
      void* buf = std::aligned_alloc(4096, 4096);
      ssize_t n = buf ? ::pread(dfd, buf, align, 0) : -1;
      std::free(buf);
      if (n == static_cast<ssize_t>(align) || (n >= 0 && f.size_ < align)) {
        f.direct_ = std::move(direct);
        f.direct_alignment_ = align;
        break;
      }
    }
  }
  return f;
}

Result<void> BlockFile::sync() const {
  if (read_only_) {
    return {};
  }
  if (::fdatasync(buffered_.get()) < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("fdatasync {}", path_));
  }
  return {};
}

}  // namespace ember::devices
