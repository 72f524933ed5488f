// Fuzzes ember's command line: the input is split into argv words at NUL bytes and parsed with
// parseCommandLine, plus the option-value parsers on their own. Properties: no crash, errors are
// Results (no exception escapes), and an accepted configuration is within its documented bounds.
#include <cstdlib>
#include <string>
#include <vector>

#include "vmm/Cli.h"

using namespace ember;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words{"ember"};
  std::string cur;
  for (size_t i = 0; i < size && words.size() < 64; ++i) {
    if (data[i] == 0) {
      words.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  words.push_back(cur);
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  auto r = vmm::parseCommandLine(static_cast<int>(argv.size()), argv.data());
  if (r) {
    if (auto* run = std::get_if<vmm::CliRun>(&*r)) {
      bool api = !run->api.sock.empty() || !run->api.config_file.empty();
      if (run->config.cpus < 1 || run->config.cpus > 254 || (run->config.kernel.empty() && !api)) {
        abort();
      }
    }
  }
  (void)vmm::parseMemorySize(cur);
  (void)vmm::parseDiskSpec(cur);
  (void)vmm::parseNetSpec(cur);
  return 0;
}
