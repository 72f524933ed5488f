// InitError: errno-carrying messages for the guest init.
#include "vmm/init/InitError.h"

#include <cstring>

namespace ember::init {

InitError InitError::fromErrno(std::string_view what, int err) {
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  return InitError{std::move(message)};
}

}  // namespace ember::init
