// ember's entry point: parse the command line, set up logging, build the machine, run it.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "vmm/Cli.h"
#include "vmm/Machine.h"

namespace {

void setUpLogging(const std::string& level) {
  // Logs go to stderr only; stdout carries the guest console.
  auto logger = spdlog::stderr_logger_mt("ember");
  logger->set_pattern("ember: %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  auto outcome = ember::vmm::parseCommandLine(argc, argv);
  if (!outcome) {
    std::fprintf(stderr, "ember: error: %s\n", outcome.error().message.c_str());
    return 1;
  }
  if (auto* print = std::get_if<ember::vmm::CliPrint>(&*outcome)) {
    std::fputs(print->text.c_str(), stdout);
    return 0;
  }
  const auto& config = std::get<ember::vmm::CliRun>(*outcome).config;
  setUpLogging(config.log_level);
  auto machine = ember::vmm::Machine::create(config);
  if (!machine) {
    std::fprintf(stderr, "ember: error: %s\n", machine.error().message.c_str());
    return 1;
  }
  return (*machine)->run();
}
