// How a device (or a vCPU, a signal, the console) asks the machine to stop, and why: the exit
// request is typed, so that ember's exit status, its last log line and the run record
// (ember run --report) all say the same thing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ember::devices {

enum class ExitReason {
  PowerOff,
  Reset,
  DebugExit,
  VcpuCrash,
  GuestPanic,
  Timeout,
  Signal,
  ConsoleQuit,
  StartupError
};

// The run record's name for a reason ("power-off", "vcpu-crash", ...).
const char* exitReasonName(ExitReason reason);

struct ExitRequest {
  ExitReason reason = ExitReason::PowerOff;
  int status = 0;       // ember's exit status
  std::string message;  // one line for the log, e.g. "guest powered off (ACPI S5)"
  // DebugExit: the whole value the guest wrote (the status is its low byte).
  uint32_t debug_exit_value = 0;
  // Signal: the signal number.
  int signal = 0;
  // VcpuCrash: which vCPU, KVM's exit reason name and the guest's RIP when it crashed.
  struct Crash {
    uint32_t vcpu = 0;
    std::string exit_reason;
    std::optional<uint64_t> rip;
  };
  std::optional<Crash> crash;

  static ExitRequest powerOff(std::string message);
  static ExitRequest reset(std::string message);
  static ExitRequest debugExit(uint32_t value);
  static ExitRequest vcpuCrash(Crash crash, std::string message);
  static ExitRequest guestPanic();
  static ExitRequest timeout(double seconds);
  static ExitRequest fromSignal(int signal);
  static ExitRequest consoleQuit();
  static ExitRequest startupError(std::string message);
};

// Exit status when the guest crashes its vCPU (triple fault, KVM internal or entry error).
constexpr int kExitGuestCrash = 3;
// Exit status when the guest kernel reports a panic through pvpanic.
constexpr int kExitGuestPanic = 4;
// Exit status when --timeout ends the VM (timeout(1)'s).
constexpr int kExitTimeout = 124;

class VmControl {
 public:
  virtual ~VmControl() = default;
  // The first request wins; its status becomes ember's exit status.
  virtual void requestExit(ExitRequest request) = 0;
};

}  // namespace ember::devices
