#include "vmm/ScratchDirectory.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>

namespace ember::vmm {

Result<ScratchDirectory> ScratchDirectory::create(const std::string& parent,
                                                  const std::string& prefix) {
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Error::fromErrno(Errc::Io, "making a scratch directory in " + parent);
  }
  return ScratchDirectory(tmpl);
}

ScratchDirectory::~ScratchDirectory() {
  if (!path_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
}

}  // namespace ember::vmm
