// FileOps: the few file operations every part of the guest init shares: reading a small file
// whole, writing a buffer whole, and creating a directory with its parents (mkdir -p).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "vmm/init/InitError.h"
#include "vmm/init/OwnedFd.h"

namespace ember::init {

// Opens with O_CLOEXEC added to `flags`; the error names the path.
InitResult<OwnedFd> openFile(const std::string& path, int flags, mode_t mode = 0);

// Everything up to end of file, retrying EINTR; more than `max_bytes` is an error.
InitResult<std::string> readAll(int fd, size_t max_bytes);

// The whole file, by readAll (the init reads only small files: the job, sysfs attributes); the
// error names the path.
InitResult<std::string> readFile(const std::string& path, size_t max_bytes);

// write(2) until every byte is written, retrying EINTR and short writes.
InitResult<void> writeAll(int fd, std::string_view bytes);

// mkdir(2) of `path` and each missing parent, like mkdir -p; existing directories are fine.
InitResult<void> makeDirectories(const std::string& path, mode_t mode = 0755);

}  // namespace ember::init
