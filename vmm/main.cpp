// ember's entry point: parse the command line, set up logging, build the machine, run it.
#include <cstdio>

#include "kvm/Log.h"
#include "vmm/Cli.h"
#include "vmm/Machine.h"

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
  ember::log::Level level = ember::log::Level::Info;
  ember::log::parseLevel(config.log_level, &level);  // validated by the CLI
  ember::log::setLevel(level);
  auto machine = ember::vmm::Machine::create(config);
  if (!machine) {
    std::fprintf(stderr, "ember: error: %s\n", machine.error().message.c_str());
    return 1;
  }
  return (*machine)->run();
}
