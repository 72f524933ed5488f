#include "vmm/ExecInitramfs.h"

#include "vmm/CpioWriter.h"

namespace ember::vmm {

namespace {
constexpr const char* kModulesDir = "/ember/modules/";
constexpr const char* kJobPath = "/ember/job";
}  // namespace

std::string guestModulePath(const ModuleFile& file) {
  return kModulesDir + file.path;
}

Result<std::vector<uint8_t>> buildExecInitramfs(init::ExecJob& job, const std::string& modules_dir,
                                                std::span<const ModuleFile> modules,
                                                std::span<const uint8_t> init) {
  job.modules.clear();
  for (const ModuleFile& file : modules) {
    job.modules.push_back(guestModulePath(file));
  }
  if (auto problem = job.validate()) {
    return makeError(Errc::InvalidArgument, "the job for the guest: {}", *problem);
  }
  std::string job_bytes = job.encode();
  CpioWriter cpio;
  for (const char* dir : {"/dev", "/proc", "/sys", "/tmp"}) {
    EMBER_TRY(cpio.addDirectory(dir, dir[1] == 't' ? 01777 : 0755));
  }
  EMBER_TRY(cpio.addCharDevice("/dev/console", 0600, 5, 1));
  EMBER_TRY(cpio.addFile("/init", 0755, init));
  EMBER_TRY(cpio.addFile(
      kJobPath, 0600,
      std::span(reinterpret_cast<const uint8_t*>(job_bytes.data()), job_bytes.size())));
  for (const ModuleFile& file : modules) {
    auto added = cpio.addHostFile(guestModulePath(file), 0644, modules_dir + "/" + file.path);
    if (!added) {
      return makeError(added.error().code, "module {}: {}", file.path, added.error().message);
    }
  }
  return std::move(cpio).finish();
}

}  // namespace ember::vmm
