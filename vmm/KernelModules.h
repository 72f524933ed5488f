// Which kernel module files a boot needs, in the order to load them, from a kernel's modules
// directory (/lib/modules/<release>): its depmod index `modules.dep` and the list of modules
// compiled into the kernel, `modules.builtin` (formats: depmod(8), modules.dep(5)).
//
// modules.dep has one line per module: its path relative to the directory, a colon, and the
// paths of the modules it needs, separated by spaces, in the order modprobe loads them last
// first ("kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio_ring.ko
// kernel/drivers/virtio/virtio.ko kernel/fs/fuse/fuse.ko"). modules.builtin has one path per
// line. A module's name is its file name without ".ko" and a compression suffix (".gz", ".xz",
// ".zst"), and names compare with '-' and '_' equal, as modprobe compares them.
//
// The directory is the user's, so both files are untrusted input: their size and every line's
// length are bounded, a path must be a relative module path below the directory (no "..", no
// empty component), every dependency must have a line of its own, and the dependency graph must
// be acyclic. All of that is checked when the index is read, in time linear in the files' size
// and without recursion, so that resolving names afterwards cannot fail.
//
// Soft dependencies (modules.softdep, and "softdep" in a module's own .modinfo, e.g. libcrc32c's
// "pre: crc32c") are not followed: modprobe loads them as well, but none of the modules ember
// asks for has one in Debian 6.1's cloud kernel (checked against `modprobe --show-depends`).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kvm/Result.h"

namespace ember::vmm {

enum class ModuleCompression : uint8_t { None, Gzip, Xz, Zstd };

struct ModuleFile {
  std::string path;  // relative to the modules directory, as modules.dep spells it
  ModuleCompression compression = ModuleCompression::None;

  bool operator==(const ModuleFile&) const = default;
};

enum class ModuleStatus : uint8_t {
  BuiltIn,  // compiled into the kernel: nothing to load
  Module,   // a module file, loaded with its dependencies
  Absent,   // neither: this kernel does not have it (the caller decides whether that matters)
};

struct WantedModule {
  std::string name;  // as asked
  ModuleStatus status = ModuleStatus::Absent;
  std::string path;  // for a Module, its own file (which is also in ModulePlan::files)
};

struct ModulePlan {
  std::vector<WantedModule> wanted;  // one per name asked, in the order asked
  // Every file to load for the wanted modules, each once, dependencies before dependents.
  std::vector<ModuleFile> files;
};

class KernelModules {
 public:
  // Bounds on the untrusted files (Debian's modules.dep is ~100 KiB, its longest line < 1 KiB).
  static constexpr uint64_t kMaxFileSize = 64ull << 20;
  static constexpr size_t kMaxLineLength = 64 << 10;

  // Reads `dir`/modules.dep (which must exist: depmod makes it) and `dir`/modules.builtin (a
  // missing one lists nothing, as for kernels older than the file). Errors name the file and line.
  static Result<KernelModules> load(const std::string& dir);
  // The same from the files' text; `dep_file` and `builtin_file` name them in errors.
  static Result<KernelModules> parse(std::string_view modules_dep, std::string_view modules_builtin,
                                     std::string_view dep_file = "modules.dep",
                                     std::string_view builtin_file = "modules.builtin");

  // Where module `name` is: built in (which wins, as there is then nothing to load), a module
  // file, or absent.
  ModuleStatus status(std::string_view name) const;
  // For each name: its status, and the files to load for all of them together.
  ModulePlan resolve(std::span<const std::string> names) const;

  size_t moduleCount() const { return modules_.size(); }
  size_t builtinCount() const { return builtin_.size(); }

 private:
  struct Module {
    std::string path;
    ModuleCompression compression;
    std::vector<uint32_t> deps;  // indices into modules_, in modules.dep's order
  };

  std::vector<Module> modules_;
  std::unordered_map<std::string, uint32_t> by_name_;  // normalised name -> index
  std::unordered_set<std::string> builtin_;            // normalised names
};

// A module's name for its path: the file name without ".ko" and a compression suffix, with '-'
// made '_' (the form modprobe compares). Empty when `path` does not end in a module suffix.
std::string moduleName(std::string_view path);

}  // namespace ember::vmm
