// The consoles' host side.
#include "vmm/HostConsoles.h"

#include <fcntl.h>
#include <unistd.h>

#include "devices/ConsoleOutputPort.h"
#include "devices/FilePort.h"
#include "devices/SocketPort.h"
#include "kvm/Log.h"

namespace ember::vmm {

Result<std::unique_ptr<HostConsoles>> HostConsoles::create(const MachineConfig& config) {
  std::unique_ptr<HostConsoles> c(new HostConsoles(config));
  c->stdout_ = std::make_unique<devices::ConsoleOutput>(STDOUT_FILENO);
  c->stderr_ = std::make_unique<devices::ConsoleOutput>(STDERR_FILENO);
  c->serial_ = c->stdout_.get();
  if (config.serial_log == "-") {
    c->serial_ = c->stderr_.get();
  } else if (!config.serial_log.empty()) {
    c->serial_fd_.reset(
        ::open(config.serial_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!c->serial_fd_.valid()) {
      return Error::fromErrno(Errc::Io,
                              fmt::format("--serial-log {}: cannot create it", config.serial_log));
    }
    c->serial_file_ = std::make_unique<devices::ConsoleOutput>(c->serial_fd_.get());
    c->serial_file_->setTotalLimit(config.serial_log_limit);
    c->serial_ = c->serial_file_.get();
  }
  return c;
}

HostConsoles::~HostConsoles() {
  input_.reset();
}

Result<std::optional<std::vector<devices::VirtioConsole::Port>>> HostConsoles::virtioPorts(
    EventLoop& loop) {
  if (config_.console != ConsoleKind::Virtio && config_.serial_ports.empty()) {
    return std::optional<std::vector<devices::VirtioConsole::Port>>();
  }
  auto writer = [](devices::ConsoleOutput* out) {
    return [out](std::span<const uint8_t> b) { out->write(b); };
  };
  std::vector<devices::VirtioConsole::Port> ports;
  if (config_.console == ConsoleKind::Virtio) {
    auto port = std::make_unique<devices::StreamPort>(writer(stdout_.get()));
    stdin_port_ = port.get();
    ports.push_back(devices::VirtioConsole::Port{"", true, std::move(port)});
  } else {
    ports.push_back(devices::VirtioConsole::Port{"", false, nullptr});
  }
  for (const auto& p : config_.serial_ports) {
    std::unique_ptr<devices::PortBackend> backend;
    switch (p.kind) {
      case SerialPortConfig::Kind::Stdio: {
        auto port = std::make_unique<devices::StreamPort>(writer(stdout_.get()));
        stdin_port_ = port.get();  // a stdio port takes stdin over the console
        backend = std::move(port);
        break;
      }
      // Output-only ports wait for a slow reader instead of dropping (ConsoleOutputPort).
      case SerialPortConfig::Kind::Stdout:
        backend = std::make_unique<devices::ConsoleOutputPort>(*stdout_);
        break;
      case SerialPortConfig::Kind::Stderr:
        backend = std::make_unique<devices::ConsoleOutputPort>(*stderr_);
        break;
      case SerialPortConfig::Kind::File:
        backend = EMBER_TRY(devices::FilePort::create(p.path, p.limit));
        break;
      case SerialPortConfig::Kind::Socket:
        backend = EMBER_TRY(devices::SocketPort::create(p.path, loop));
        break;
    }
    log::debug("virtio-console port {}: {}", ports.size(), p.name);
    ports.push_back(devices::VirtioConsole::Port{p.name, false, std::move(backend)});
  }
  return std::optional(std::move(ports));
}

Result<void> HostConsoles::startInput(EventLoop& loop, devices::Uart8250& uart, ExitLatch& exit) {
  if (!config_.stdin_input) {
    return {};
  }
  devices::ConsoleInput::Sink sink;
  if (stdin_port_ != nullptr) {
    auto* port = stdin_port_;
    sink = [port](std::span<const uint8_t> b) { return port->pushInput(b); };
  } else {
    sink = [&uart](std::span<const uint8_t> b) { return uart.pushInput(b); };
  }
  input_ = std::make_unique<devices::ConsoleInput>(loop, STDIN_FILENO, std::move(sink), [&exit] {
    exit.requestExit(devices::ExitRequest::consoleQuit());
  });
  auto* in = input_.get();
  if (stdin_port_ != nullptr) {
    stdin_port_->setRoomCallback([in] { in->resume(); });
  } else {
    uart.setInputRoomCallback([in] { in->resume(); });
  }
  EMBER_TRY(input_->start());
  return {};
}

void HostConsoles::flush() {
  for (auto* out : {stdout_.get(), stderr_.get(), serial_file_.get()}) {
    if (out == nullptr) continue;
    out->flush(2000);
    if (uint64_t dropped = out->dropped(); dropped > 0 && out->cut()) {
      log::warn("console: {} was cut at its limit of {} bytes ({} more bytes of guest output)",
                config_.serial_log, config_.serial_log_limit, dropped);
    } else if (dropped > 0) {
      log::warn(
          "console: {} bytes of guest output were dropped because {} was not being read fast "
          "enough",
          dropped,
          out == stdout_.get()   ? "stdout"
          : out == stderr_.get() ? "stderr"
                                 : config_.serial_log);
    }
  }
}

}  // namespace ember::vmm
