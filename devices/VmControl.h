// How a device asks the machine to stop (power-off, reset, debug exit).
#pragma once

#include <string>

namespace ember::devices {

class VmControl {
 public:
  virtual ~VmControl() = default;
  // The first request wins; `status` becomes ember's exit status.
  virtual void requestExit(int status, std::string reason) = 0;
};

}  // namespace ember::devices
