// `ember` command-line parsing (CLI11) into a MachineConfig.
//
// Parsing never exits the process itself: it returns either a config to run, text to print
// (--help, --version) or one error line naming the offending option.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "kvm/Result.h"
#include "vmm/ExecRequest.h"
#include "vmm/MachineConfig.h"
#include "vmm/OptionSpecs.h"

namespace ember::vmm {

// --api-sock, --config-file, --no-api, --id: the control plane (vmm/api).
struct ApiOptions {
  std::string sock;         // serve Firecracker's API here (empty: no API)
  std::string config_file;  // boot what this Firecracker config file describes
  bool no_api = false;
  std::string id = "anonymous-instance";  // GET /'s id, Firecracker's default
};

struct CliRun {
  MachineConfig config;  // without --kernel: the options every VM the API starts gets
  ApiOptions api;
};
struct CliPrint {
  std::string text;  // help or version, printed to stdout, exit status 0
};
struct CliExec {
  ExecRequest request;
};
using CliOutcome = std::variant<CliRun, CliPrint, CliExec>;

// ember exec's status for a command line it cannot use (docker run's 125); ember run's is 1.
constexpr int kExecUsageError = 125;

Result<CliOutcome> parseCommandLine(int argc, const char* const* argv);

}  // namespace ember::vmm
