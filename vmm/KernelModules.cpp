// Reading modules.dep and modules.builtin, checking the dependency graph, and ordering the files
// a set of modules needs the way modprobe loads them.
#include "vmm/KernelModules.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "vmm/ElfLoader.h"

namespace ember::vmm {

namespace {

// A path can only be as long as the kernel's PATH_MAX allows.
constexpr size_t kMaxPathLength = 4095;
// How many modules of a dependency cycle an error message shows.
constexpr size_t kCycleShown = 8;

struct Suffix {
  std::string_view text;
  ModuleCompression compression;
};
// depmod(8) indexes uncompressed modules and those kmod can decompress.
constexpr Suffix kSuffixes[] = {{".ko", ModuleCompression::None},
                                {".ko.gz", ModuleCompression::Gzip},
                                {".ko.xz", ModuleCompression::Xz},
                                {".ko.zst", ModuleCompression::Zstd}};

const Suffix* moduleSuffix(std::string_view path) {
  for (const Suffix& s : kSuffixes) {
    if (path.ends_with(s.text)) {
      return &s;
    }
  }
  return nullptr;
}

std::string normalisedName(std::string_view name) {
  std::string n(name);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

// Why `path` is not a module path below the modules directory, or nullptr when it is one.
const char* pathProblem(std::string_view path) {
  if (path.size() > kMaxPathLength) {
    return "is longer than PATH_MAX";
  }
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == ':') {
      return "has a space, a control character or a ':'";
    }
  }
  if (path.starts_with('/')) {
    return "is absolute, not relative to the modules directory";
  }
  for (size_t start = 0; start <= path.size();) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string_view component = path.substr(start, end - start);
    if (component.empty() || component == "." || component == "..") {
      return "has an empty, \".\" or \"..\" component";
    }
    start = end + 1;
  }
  if (moduleName(path).empty()) {
    return "does not name a module (NAME.ko, .ko.gz, .ko.xz or .ko.zst)";
  }
  return nullptr;
}

template <typename... Args>
Error lineError(std::string_view file, uint32_t line, fmt::format_string<Args...> f,
                Args&&... args) {
  return makeError(Errc::Format, "{}:{}: {}", file, line,
                   fmt::format(f, std::forward<Args>(args)...));
}

// Calls fn(line_text, line_number) for every line that is not empty, after checking its length.
template <typename Fn>
Result<void> forEachLine(std::string_view text, std::string_view file, Fn&& fn) {
  uint32_t number = 0;
  for (size_t start = 0; start < text.size();) {
    ++number;
    size_t end = std::min(text.find('\n', start), text.size());
    if (end - start > KernelModules::kMaxLineLength) {
      return lineError(file, number, "line is longer than {} bytes", KernelModules::kMaxLineLength);
    }
    std::string_view line = text.substr(start, end - start);
    if (!line.empty()) {
      EMBER_TRY(fn(line, number));
    }
    start = end + 1;
  }
  return {};
}

// Calls fn(token) for each space- or tab-separated word of `text`.
template <typename Fn>
Result<void> forEachWord(std::string_view text, Fn&& fn) {
  for (size_t start = 0; start < text.size();) {
    start = text.find_first_not_of(" \t", start);
    if (start == std::string_view::npos) {
      break;
    }
    size_t end = std::min(text.find_first_of(" \t", start), text.size());
    EMBER_TRY(fn(text.substr(start, end - start)));
    start = end;
  }
  return {};
}

// The command that makes the index for `dir`: depmod(8) reads BASE/lib/modules/VERSION.
std::string depmodCommand(const std::string& dir) {
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (!p.has_filename()) {
    p = p.parent_path();  // a trailing '/'
  }
  std::filesystem::path modules = p.parent_path();
  if (modules.filename() == "modules" && modules.parent_path().filename() == "lib") {
    std::string base = modules.parent_path().parent_path().string();
    std::string version = p.filename().string();
    if (base.empty() || base == "/") {
      return fmt::format("`depmod {}`", version);
    }
    return fmt::format("`depmod -b {} {}`", base, version);
  }
  return "`depmod -b BASE VERSION` (with the directory at BASE/lib/modules/VERSION)";
}

}  // namespace

std::string moduleName(std::string_view path) {
  const Suffix* suffix = moduleSuffix(path);
  if (suffix == nullptr) {
    return {};
  }
  std::string_view file = path.substr(path.rfind('/') + 1);  // npos + 1 == 0: no directory
  return normalisedName(file.substr(0, file.size() - suffix->text.size()));
}

Result<KernelModules> KernelModules::parse(std::string_view modules_dep,
                                           std::string_view modules_builtin,
                                           std::string_view dep_file,
                                           std::string_view builtin_file) {
  for (auto [text, file] :
       {std::pair(modules_dep, dep_file), std::pair(modules_builtin, builtin_file)}) {
    if (text.size() > kMaxFileSize) {
      return makeError(Errc::OutOfRange, "{} is {} bytes, larger than the {} allowed", file,
                       text.size(), kMaxFileSize);
    }
  }
  KernelModules index;
  // Pass 1: one module per line, with the line's number and its dependency text kept for pass 2.
  std::unordered_map<std::string_view, uint32_t> by_path;
  std::vector<uint32_t> lines;
  std::vector<std::string_view> dep_texts;
  const size_t lines_at_most =
      static_cast<size_t>(std::count(modules_dep.begin(), modules_dep.end(), '\n')) + 1;
  by_path.reserve(lines_at_most);
  index.by_name_.reserve(lines_at_most);
  index.modules_.reserve(lines_at_most);
  EMBER_TRY(forEachLine(modules_dep, dep_file, [&](std::string_view line, uint32_t number) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Result<void>(lineError(dep_file, number, "expected \"PATH: DEPENDENCIES\", no ':'"));
    }
    std::string_view path = line.substr(0, colon);
    if (const char* problem = pathProblem(path)) {
      return Result<void>(lineError(dep_file, number, "module path {:?} {}", path, problem));
    }
    auto index_of = static_cast<uint32_t>(index.modules_.size());
    if (auto [it, added] = by_path.emplace(path, index_of); !added) {
      return Result<void>(lineError(dep_file, number, "{} is listed again (first at line {})", path,
                                    lines[it->second]));
    }
    std::string name = moduleName(path);
    if (auto [it, added] = index.by_name_.emplace(name, index_of); !added) {
      return Result<void>(lineError(dep_file, number,
                                    "module {} ({}) is listed again (first as {} at line {})", name,
                                    path, index.modules_[it->second].path, lines[it->second]));
    }
    index.modules_.push_back(Module{std::string(path), moduleSuffix(path)->compression, {}});
    lines.push_back(number);
    dep_texts.push_back(line.substr(colon + 1));
    return okResult();
  }));

  // Pass 2: dependencies, each of which must be a module with a line of its own.
  for (uint32_t i = 0; i < index.modules_.size(); ++i) {
    Module& m = index.modules_[i];
    EMBER_TRY(forEachWord(dep_texts[i], [&](std::string_view dep) {
      if (const char* problem = pathProblem(dep)) {
        return Result<void>(
            lineError(dep_file, lines[i], "dependency {:?} of {} {}", dep, m.path, problem));
      }
      auto it = by_path.find(dep);
      if (it == by_path.end()) {
        return Result<void>(lineError(dep_file, lines[i],
                                      "{} depends on {}, which has no line of its own (run "
                                      "depmod again)",
                                      m.path, dep));
      }
      m.deps.push_back(it->second);
      return okResult();
    }));
  }

  // Pass 3: no cycles, by a depth-first walk over every module with an explicit stack (a
  // crafted file can make the graph as deep as it has lines). A module is new, on the walk's
  // current path, or finished; an edge back to one on the path closes a cycle.
  enum : uint8_t { kNew, kOnPath, kDone };
  std::vector<uint8_t> state(index.modules_.size(), kNew);
  std::vector<std::pair<uint32_t, size_t>> path;  // (module, next dependency to follow)
  for (uint32_t root = 0; root < index.modules_.size(); ++root) {
    if (state[root] != kNew) {
      continue;
    }
    state[root] = kOnPath;
    path.emplace_back(root, 0);
    while (!path.empty()) {
      auto& [m, next] = path.back();
      const std::vector<uint32_t>& deps = index.modules_[m].deps;
      if (next == deps.size()) {
        state[m] = kDone;
        path.pop_back();
        continue;
      }
      uint32_t dep = deps[next++];
      if (state[dep] == kNew) {
        state[dep] = kOnPath;
        path.emplace_back(dep, 0);
      } else if (state[dep] == kOnPath) {
        auto first = std::find_if(path.begin(), path.end(),
                                  [dep](const auto& entry) { return entry.first == dep; });
        std::vector<std::string_view> cycle;
        size_t length = static_cast<size_t>(path.end() - first);
        for (auto it = first; it != path.end(); ++it) {
          size_t k = static_cast<size_t>(it - first);
          if (k < kCycleShown / 2 || length - k <= kCycleShown / 2 || length <= kCycleShown) {
            cycle.push_back(index.modules_[it->first].path);
          } else if (k == kCycleShown / 2) {
            cycle.push_back("...");
          }
        }
        cycle.push_back(index.modules_[dep].path);
        return lineError(dep_file, lines[path.back().first], "dependency cycle of {} modules: {}",
                         length, fmt::join(cycle, " -> "));
      }
    }
  }

  EMBER_TRY(forEachLine(modules_builtin, builtin_file, [&](std::string_view line, uint32_t number) {
    if (const char* problem = pathProblem(line)) {
      return Result<void>(lineError(builtin_file, number, "module path {:?} {}", line, problem));
    }
    index.builtin_.insert(moduleName(line));
    return okResult();
  }));
  return index;
}

Result<KernelModules> KernelModules::load(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return makeError(Errc::NotFound, "kernel modules directory {} does not exist", dir);
  }
  std::string dep_path = dir + "/modules.dep";
  auto dep = readImageFile(dep_path, kMaxFileSize, "module index");
  if (!dep.ok()) {
    if (dep.error().code == Errc::NotFound) {
      return makeError(Errc::NotFound, "{}: no such file; run {} to make the module index",
                       dep_path, depmodCommand(dir));
    }
    return Error{dep.error().code,
                 fmt::format("{} (run {} to make the module index)", dep.error().message,
                             depmodCommand(dir)),
                 dep.error().sys_errno};
  }
  std::string builtin_path = dir + "/modules.builtin";
  std::vector<uint8_t> builtin;
  if (auto b = readImageFile(builtin_path, kMaxFileSize, "built-in module list"); b.ok()) {
    builtin = std::move(b).value();
  } else if (b.error().code != Errc::NotFound) {
    return std::move(b).error();
  }
  auto text = [](const std::vector<uint8_t>& bytes) {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()),  // the bytes as chars
                            bytes.size());
  };
  return parse(text(*dep), text(builtin), dep_path, builtin_path);
}

ModuleStatus KernelModules::status(std::string_view name) const {
  std::string n = normalisedName(name);
  if (builtin_.contains(n)) {
    return ModuleStatus::BuiltIn;
  }
  return by_name_.contains(n) ? ModuleStatus::Module : ModuleStatus::Absent;
}

ModulePlan KernelModules::resolve(std::span<const std::string> names) const {
  ModulePlan plan;
  // A depth-first walk from each wanted module, following dependencies last first (the order
  // modprobe loads them in) and emitting a module once all its dependencies are: so files come
  // after what they need, and with depmod's lists (already transitive) in modprobe's own order.
  // parse() made the graph acyclic, so a module met again is finished or on the walk's path
  // through a diamond's other side, and is not followed twice.
  std::vector<bool> seen(modules_.size(), false);
  std::vector<std::pair<uint32_t, size_t>> path;  // (module, dependencies left to follow)
  for (const std::string& name : names) {
    WantedModule& w = plan.wanted.emplace_back(WantedModule{name, status(name), {}});
    if (w.status != ModuleStatus::Module) {
      continue;
    }
    uint32_t root = by_name_.at(normalisedName(name));
    w.path = modules_[root].path;
    if (seen[root]) {
      continue;
    }
    seen[root] = true;
    path.emplace_back(root, modules_[root].deps.size());
    while (!path.empty()) {
      auto& [m, left] = path.back();
      if (left == 0) {
        plan.files.push_back(ModuleFile{modules_[m].path, modules_[m].compression});
        path.pop_back();
        continue;
      }
      uint32_t dep = modules_[m].deps[--left];
      if (!seen[dep]) {
        seen[dep] = true;
        path.emplace_back(dep, modules_[dep].deps.size());
      }
    }
  }
  return plan;
}

}  // namespace ember::vmm
