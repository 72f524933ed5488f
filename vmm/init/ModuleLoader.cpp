// ModuleLoader: finit_module(2) with the compression flag chosen by the file's name.
#include "vmm/init/ModuleLoader.h"

#include <fcntl.h>
#include <linux/module.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "vmm/init/FileOps.h"

namespace ember::init {

unsigned moduleInitFlags(std::string_view path) {
  constexpr std::array<std::string_view, 3> kCompressed = {".ko.xz", ".ko.zst", ".ko.gz"};
  for (std::string_view suffix : kCompressed) {
    if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
      return MODULE_INIT_COMPRESSED_FILE;
    }
  }
  return 0;
}

InitResult<void> loadModule(const std::string& path) {
  InitResult<OwnedFd> fd = openFile(path, O_RDONLY);
  if (!fd.ok()) {
    return InitError{"loading module: " + fd.error().message};
  }
  unsigned flags = moduleInitFlags(path);
  // glibc has no wrapper for finit_module(2); the parameter string is empty.
  if (::syscall(SYS_finit_module, fd.value().get(), "", flags) == 0 || errno == EEXIST) {
    return {};
  }
  int err = errno;
  InitError error = InitError::fromErrno("loading module " + path, err);
  if (err == ENOEXEC) {
    error.message += " (not a module for this kernel: built for another version or architecture?)";
  } else if ((err == EINVAL || err == EOPNOTSUPP) && flags != 0) {
    error.message +=
        " (the kernel decompresses a module itself from Linux 5.17 with"
        " CONFIG_MODULE_DECOMPRESS, in the one format it was built for)";
  } else if (err == ENOENT) {
    error.message += " (a module it needs, listed before it, is missing)";
  }
  return error;
}

}  // namespace ember::init
