// The host side of the guest's consoles: where COM1 writes (stdout, or --serial-log FILE), where
// the virtio-console ports write (stdout, stderr, files, unix sockets), and which of them stdin
// feeds (a stdio port, else the console --console chose). It owns the outputs, which never block
// a vCPU (ConsoleOutput), and the stdin reader (raw mode on a terminal, restored by RAII).
//
// Order of life: made before the devices (they write into it), input started once the devices
// exist, input stopped (the terminal restored) when the VM stops, and the outputs flushed after
// the devices are gone.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "devices/ConsoleInput.h"
#include "devices/ConsoleOutput.h"
#include "devices/Uart8250.h"
#include "devices/VirtioConsole.h"
#include "kvm/EventLoop.h"
#include "kvm/UniqueFd.h"
#include "vmm/ExitLatch.h"
#include "vmm/MachineConfig.h"

namespace ember::vmm {

class HostConsoles {
 public:
  static Result<std::unique_ptr<HostConsoles>> create(const MachineConfig& config);
  ~HostConsoles();

  // What COM1 writes goes here.
  void serialOutput(std::span<const uint8_t> bytes) { serial_->write(bytes); }
  // The virtio-console device's ports, if the configuration asks for the device (--console
  // virtio or any --serial-port); port 0 is the console (hvc0) with --console virtio.
  Result<std::optional<std::vector<devices::VirtioConsole::Port>>> virtioPorts(EventLoop& loop);
  // Starts feeding stdin to the stdio port, the virtio console, or `uart`.
  Result<void> startInput(EventLoop& loop, devices::Uart8250& uart, ExitLatch& exit);
  // Stops reading stdin and restores the terminal.
  void stopInput() { input_.reset(); }
  // Waits (bounded) for the outputs to drain and says what was dropped.
  void flush();

 private:
  HostConsoles(const MachineConfig& config) : config_(config) {}

  const MachineConfig& config_;
  std::unique_ptr<devices::ConsoleOutput> stdout_, stderr_, serial_file_;
  devices::ConsoleOutput* serial_ = nullptr;  // stdout_, stderr_ or serial_file_
  UniqueFd serial_fd_;
  devices::StreamPort* stdin_port_ = nullptr;  // the virtio-console port stdin feeds, if any
  std::unique_ptr<devices::ConsoleInput> input_;
};

}  // namespace ember::vmm
