// Names of the error categories, for log lines and test failure messages.
#include "kvm/Result.h"

namespace ember {

const char* errcName(Errc code) {
  switch (code) {
    case Errc::InvalidArgument:
      return "invalid argument";
    case Errc::NotFound:
      return "not found";
    case Errc::Io:
      return "I/O error";
    case Errc::Kvm:
      return "KVM error";
    case Errc::Format:
      return "format error";
    case Errc::OutOfRange:
      return "out of range";
    case Errc::Unsupported:
      return "unsupported";
    case Errc::Guest:
      return "guest error";
    case Errc::Busy:
      return "busy";
  }
  return "error";
}

}  // namespace ember
