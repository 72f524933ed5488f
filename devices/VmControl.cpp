// Exit requests and their names in the run record.
#include "devices/VmControl.h"

#include <fmt/format.h>

#include <cstring>

namespace ember::devices {

const char* exitReasonName(ExitReason reason) {
  switch (reason) {
    case ExitReason::PowerOff:
      return "power-off";
    case ExitReason::Reset:
      return "reset";
    case ExitReason::DebugExit:
      return "debug-exit";
    case ExitReason::VcpuCrash:
      return "vcpu-crash";
    case ExitReason::GuestPanic:
      return "guest-panic";
    case ExitReason::Timeout:
      return "timeout";
    case ExitReason::Signal:
      return "signal";
    case ExitReason::ConsoleQuit:
      return "console-quit";
    case ExitReason::StartupError:
      return "startup-error";
  }
  return "unknown";
}

ExitRequest ExitRequest::powerOff(std::string message) {
  return ExitRequest{ExitReason::PowerOff, 0, std::move(message)};
}

ExitRequest ExitRequest::reset(std::string message) {
  return ExitRequest{ExitReason::Reset, 0, std::move(message)};
}

ExitRequest ExitRequest::debugExit(uint32_t value) {
  // Exit statuses are 8 bits; the value is reported in full but truncated for exit().
  ExitRequest r{ExitReason::DebugExit, static_cast<int>(value & 0xff),
                fmt::format("guest wrote {} to the debug-exit port", value)};
  r.debug_exit_value = value;
  return r;
}

ExitRequest ExitRequest::vcpuCrash(Crash crash, std::string message) {
  ExitRequest r{ExitReason::VcpuCrash, kExitGuestCrash, std::move(message)};
  r.crash = std::move(crash);
  return r;
}

ExitRequest ExitRequest::guestPanic() {
  return ExitRequest{ExitReason::GuestPanic, kExitGuestPanic,
                     "the guest kernel panicked (pvpanic)"};
}

ExitRequest ExitRequest::timeout(double seconds) {
  return ExitRequest{ExitReason::Timeout, kExitTimeout,
                     fmt::format("the VM ran out of its --timeout of {} s", seconds)};
}

ExitRequest ExitRequest::fromSignal(int signal) {
  const char* name = sigabbrev_np(signal);
  ExitRequest r{ExitReason::Signal, 128 + signal,
                fmt::format("received {}", name != nullptr ? name : std::to_string(signal))};
  r.signal = signal;
  return r;
}

ExitRequest ExitRequest::consoleQuit() {
  return ExitRequest{ExitReason::ConsoleQuit, 0, "quit from the console (Ctrl-A x)"};
}

ExitRequest ExitRequest::startupError(std::string message) {
  return ExitRequest{ExitReason::StartupError, 1, std::move(message)};
}

}  // namespace ember::devices
