// ember's entry point: parse the command line, set up logging, build the machine, run it, and
// write the run record (--report) however the run ended.
#include <cstdio>
#include <optional>
#include <string_view>

#include "kvm/Log.h"
#include "vmm/Cli.h"
#include "vmm/ExecSession.h"
#include "vmm/Machine.h"
#include "vmm/RunRecord.h"
#include "vmm/api/ApiRun.h"

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "ember: error: %s\n", message.c_str());
  return 1;
}

// Builds, runs and tears down the machine; a start-up error is a record too.
ember::vmm::RunRecord runMachine(const ember::vmm::MachineConfig& config) {
  auto machine = ember::vmm::Machine::create(config);
  if (!machine) {
    fail(machine.error().message);
    ember::vmm::RunRecord record;
    record.exit = ember::devices::ExitRequest::startupError(machine.error().message);
    return record;
  }
  return (*machine)->run();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ember;
  auto outcome = vmm::parseCommandLine(argc, argv);
  if (!outcome) {
    bool exec = argc > 1 && std::string_view(argv[1]) == "exec";
    if (exec) {
      std::fprintf(stderr, "ember exec: %s\n", outcome.error().message.c_str());
      return vmm::kExecUsageError;
    }
    return fail(outcome.error().message);
  }
  if (auto* print = std::get_if<vmm::CliPrint>(&*outcome)) {
    std::fputs(print->text.c_str(), stdout);
    return 0;
  }
  if (auto* exec = std::get_if<vmm::CliExec>(&*outcome)) {
    log::Level level = exec->request.verbose ? log::Level::Info : log::Level::Warn;
    log::setLevel(level);
    return vmm::runExec(exec->request);
  }
  const auto& run = std::get<vmm::CliRun>(*outcome);
  const auto& config = run.config;
  log::Level level = log::Level::Info;
  log::parseLevel(config.log_level, &level);  // validated by the CLI
  log::setLevel(level);
  std::optional<vmm::RunReportFile> report;
  if (!config.report.empty()) {
    auto file = vmm::RunReportFile::create(config.report);
    if (!file) {
      return fail(file.error().message);
    }
    report.emplace(std::move(*file));
  }
  bool api = !run.api.sock.empty() || !run.api.config_file.empty();
  vmm::RunRecord record = api ? vmm::api::runWithApi(config, run.api) : runMachine(config);
  if (report) {
    if (auto r = report->write(record); !r) {
      fail(r.error().message);
      return record.exit.status != 0 ? record.exit.status : 1;
    }
  }
  return record.exit.status;
}
