// Fuzzes the kernel module index parser: the input is modules.dep's text up to the first NUL
// byte, then modules.builtin's text up to the next, then module names (one per line) to
// resolve besides the ones ember asks for. Properties: no crash, no exception, and an accepted
// index resolves consistently: every file once, a wanted module's own file among them, each
// name's status the same as status() gives, and only module paths in the plan.
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/KernelModules.h"

using namespace ember;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);  // the bytes as text
  std::string_view dep = input.substr(0, input.find('\0'));
  std::string_view rest = dep.size() < input.size() ? input.substr(dep.size() + 1) : "";
  std::string_view builtin = rest.substr(0, rest.find('\0'));
  std::string_view names_text = builtin.size() < rest.size() ? rest.substr(builtin.size() + 1) : "";

  auto index = vmm::KernelModules::parse(dep, builtin);
  if (!index) {
    if (index.error().message.empty()) abort();
    return 0;
  }
  std::vector<std::string> names = {"virtio_pci", "virtio_console", "fuse",
                                    "virtiofs",   "overlay",        "pvpanic-pci"};
  for (size_t start = 0; start < names_text.size() && names.size() < 64;) {
    size_t end = std::min(names_text.find('\n', start), names_text.size());
    names.emplace_back(names_text.substr(start, end - start));
    start = end + 1;
  }
  vmm::ModulePlan plan = index->resolve(names);
  if (plan.wanted.size() != names.size()) abort();
  std::set<std::string> files;
  for (const auto& f : plan.files) {
    if (vmm::moduleName(f.path).empty() || !files.insert(f.path).second) abort();
  }
  if (files.size() > index->moduleCount()) abort();
  for (size_t i = 0; i < names.size(); ++i) {
    const vmm::WantedModule& w = plan.wanted[i];
    if (w.name != names[i] || w.status != index->status(names[i])) abort();
    if ((w.status == vmm::ModuleStatus::Module) != !w.path.empty()) abort();
    if (w.status == vmm::ModuleStatus::Module && !files.contains(w.path)) abort();
  }
  return 0;
}
