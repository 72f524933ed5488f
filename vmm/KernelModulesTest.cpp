// KernelModules on fixture indexes: the lines Debian 6.1's depmod writes for the modules ember
// needs (with the load order `modprobe --show-depends` gives for them), built-in and absent
// modules, '-'/'_' names, compressed modules, hand-written non-transitive lists and diamonds,
// every malformed-input error with its file and line, the files read from a directory, and
// generated indexes deep and wide enough that recursion or a quadratic pass would show.
#include <gtest/gtest.h>

#include <string>

#include "vmm/KernelModules.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

using testing::TempDir;

// Lines of the modules.dep that `depmod` makes for Debian's linux-image-6.1.0-50-cloud-amd64.
constexpr std::string_view kDebianDep =
    "kernel/fs/fuse/fuse.ko:\n"
    "kernel/fs/fuse/cuse.ko: kernel/fs/fuse/fuse.ko\n"
    "kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio_ring.ko "
    "kernel/drivers/virtio/virtio.ko kernel/fs/fuse/fuse.ko\n"
    "kernel/fs/overlayfs/overlay.ko:\n"
    "kernel/drivers/virtio/virtio.ko:\n"
    "kernel/drivers/virtio/virtio_ring.ko:\n"
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
    "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko "
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko "
    "kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio_ring.ko "
    "kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/misc/pvpanic/pvpanic.ko:\n"
    "kernel/drivers/misc/pvpanic/pvpanic-mmio.ko: kernel/drivers/misc/pvpanic/pvpanic.ko\n"
    "kernel/drivers/misc/pvpanic/pvpanic-pci.ko: kernel/drivers/misc/pvpanic/pvpanic.ko\n";
constexpr std::string_view kDebianBuiltin =
    "kernel/fs/binfmt_script.ko\n"
    "kernel/fs/binfmt_elf.ko\n";

const std::vector<std::string> kEmberModules = {"virtio_pci", "virtio_console", "fuse",
                                                "virtiofs",   "overlay",        "pvpanic-pci"};

KernelModules parseOk(std::string_view dep, std::string_view builtin = {}) {
  auto r = KernelModules::parse(dep, builtin);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return std::move(KernelModules::parse("", "")).value();
  return std::move(r).value();
}

std::vector<std::string> pathsOf(const ModulePlan& plan) {
  std::vector<std::string> paths;
  for (const auto& f : plan.files) paths.push_back(f.path);
  return paths;
}

std::vector<std::string> resolvePaths(const KernelModules& m, std::vector<std::string> names) {
  return pathsOf(m.resolve(names));
}

// The error parse() gives, which must name `file` and `line`.
std::string parseError(std::string_view dep, std::string_view builtin = {}) {
  auto r = KernelModules::parse(dep, builtin);
  EXPECT_FALSE(r.ok()) << "accepted: " << dep;
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, Errc::Format);
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "one line";
  return r.error().message;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(KernelModules, ModuleNamesDropTheSuffixAndCompareDashesAsUnderscores) {
  EXPECT_EQ(moduleName("kernel/drivers/misc/pvpanic/pvpanic-pci.ko"), "pvpanic_pci");
  EXPECT_EQ(moduleName("kernel/fs/fuse/virtiofs.ko.xz"), "virtiofs");
  EXPECT_EQ(moduleName("kernel/fs/fuse/fuse.ko.zst"), "fuse");
  EXPECT_EQ(moduleName("kernel/fs/overlayfs/overlay.ko.gz"), "overlay");
  EXPECT_EQ(moduleName("virtio_pci.ko"), "virtio_pci");
  EXPECT_EQ(moduleName("kernel/a.b-c.ko"), "a.b_c");
  EXPECT_EQ(moduleName("kernel/fuse.o"), "");
  EXPECT_EQ(moduleName("kernel/fuse.ko.bz2"), "");
  EXPECT_EQ(moduleName("kernel/.ko"), "");
  EXPECT_EQ(moduleName(""), "");
}

// The order `modprobe -d ROOT -S 6.1.0-50-cloud-amd64 --show-depends` prints for each module.
TEST(KernelModules, ResolvesDebiansIndexInModprobesOrder) {
  KernelModules m = parseOk(kDebianDep, kDebianBuiltin);
  EXPECT_EQ(m.moduleCount(), 13u);
  EXPECT_EQ(m.builtinCount(), 2u);
  EXPECT_EQ(resolvePaths(m, {"virtio_pci"}),
            (std::vector<std::string>{"kernel/drivers/virtio/virtio.ko",
                                      "kernel/drivers/virtio/virtio_ring.ko",
                                      "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                                      "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                                      "kernel/drivers/virtio/virtio_pci.ko"}));
  EXPECT_EQ(resolvePaths(m, {"virtiofs"}),
            (std::vector<std::string>{"kernel/fs/fuse/fuse.ko", "kernel/drivers/virtio/virtio.ko",
                                      "kernel/drivers/virtio/virtio_ring.ko",
                                      "kernel/fs/fuse/virtiofs.ko"}));
  EXPECT_EQ(resolvePaths(m, {"pvpanic-pci"}),
            (std::vector<std::string>{"kernel/drivers/misc/pvpanic/pvpanic.ko",
                                      "kernel/drivers/misc/pvpanic/pvpanic-pci.ko"}));

  // All of ember's at once: every file once, each after what it needs.
  ModulePlan plan = m.resolve(kEmberModules);
  EXPECT_EQ(pathsOf(plan), (std::vector<std::string>{
                               "kernel/drivers/virtio/virtio.ko",
                               "kernel/drivers/virtio/virtio_ring.ko",
                               "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                               "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                               "kernel/drivers/virtio/virtio_pci.ko",
                               "kernel/drivers/char/virtio_console.ko",
                               "kernel/fs/fuse/fuse.ko",
                               "kernel/fs/fuse/virtiofs.ko",
                               "kernel/fs/overlayfs/overlay.ko",
                               "kernel/drivers/misc/pvpanic/pvpanic.ko",
                               "kernel/drivers/misc/pvpanic/pvpanic-pci.ko",
                           }));
  ASSERT_EQ(plan.wanted.size(), kEmberModules.size());
  for (size_t i = 0; i < kEmberModules.size(); ++i) {
    EXPECT_EQ(plan.wanted[i].name, kEmberModules[i]);
    EXPECT_EQ(plan.wanted[i].status, ModuleStatus::Module) << kEmberModules[i];
  }
  EXPECT_EQ(plan.wanted[3].path, "kernel/fs/fuse/virtiofs.ko");
  EXPECT_EQ(plan.wanted[5].path, "kernel/drivers/misc/pvpanic/pvpanic-pci.ko");
  for (const auto& f : plan.files) EXPECT_EQ(f.compression, ModuleCompression::None);
}

TEST(KernelModules, BuiltInModulesNeedNothingAndWinOverAFile) {
  // A kernel with virtio and fuse built in: modules.dep lists neither (and one stray line).
  KernelModules m = parseOk(
      "kernel/fs/fuse/virtiofs.ko:\n"
      "kernel/fs/overlayfs/overlay.ko:\n",
      "kernel/drivers/virtio/virtio.ko\n"
      "kernel/drivers/virtio/virtio_pci.ko\n"
      "kernel/fs/fuse/fuse.ko\n"
      "kernel/fs/overlayfs/overlay.ko\n");
  ModulePlan plan =
      m.resolve(std::vector<std::string>{"virtio-pci", "fuse", "virtiofs", "overlay"});
  ASSERT_EQ(plan.wanted.size(), 4u);
  EXPECT_EQ(plan.wanted[0].status, ModuleStatus::BuiltIn);
  EXPECT_EQ(plan.wanted[1].status, ModuleStatus::BuiltIn);
  EXPECT_EQ(plan.wanted[2].status, ModuleStatus::Module);
  EXPECT_EQ(plan.wanted[3].status, ModuleStatus::BuiltIn);
  EXPECT_TRUE(plan.wanted[3].path.empty());
  EXPECT_EQ(pathsOf(plan), (std::vector<std::string>{"kernel/fs/fuse/virtiofs.ko"}));
}

TEST(KernelModules, AbsentModulesAreReportedAndTheRestResolved) {
  KernelModules m = parseOk(kDebianDep, kDebianBuiltin);
  ModulePlan plan = m.resolve(std::vector<std::string>{"fuse", "9p", "", "overlay", "fuse.ko"});
  ASSERT_EQ(plan.wanted.size(), 5u);
  EXPECT_EQ(plan.wanted[1].status, ModuleStatus::Absent);
  EXPECT_EQ(plan.wanted[2].status, ModuleStatus::Absent);
  EXPECT_EQ(plan.wanted[4].status, ModuleStatus::Absent);  // a name, not a file name
  EXPECT_TRUE(plan.wanted[1].path.empty());
  EXPECT_EQ(pathsOf(plan),
            (std::vector<std::string>{"kernel/fs/fuse/fuse.ko", "kernel/fs/overlayfs/overlay.ko"}));
  EXPECT_EQ(m.status("binfmt-script"), ModuleStatus::BuiltIn);
  EXPECT_EQ(m.status("pvpanic_mmio"), ModuleStatus::Module);
  EXPECT_EQ(m.status("pvpanic"), ModuleStatus::Module);
  EXPECT_EQ(m.status("pvpanic_"), ModuleStatus::Absent);
}

TEST(KernelModules, NamesAskedTwiceOrBothWaysGiveTheFilesOnce) {
  KernelModules m = parseOk(kDebianDep);
  ModulePlan plan =
      m.resolve(std::vector<std::string>{"pvpanic_pci", "pvpanic-pci", "pvpanic-mmio", "pvpanic"});
  ASSERT_EQ(plan.wanted.size(), 4u);
  for (const auto& w : plan.wanted) EXPECT_EQ(w.status, ModuleStatus::Module) << w.name;
  EXPECT_EQ(plan.wanted[1].path, "kernel/drivers/misc/pvpanic/pvpanic-pci.ko");
  EXPECT_EQ(pathsOf(plan), (std::vector<std::string>{
                               "kernel/drivers/misc/pvpanic/pvpanic.ko",
                               "kernel/drivers/misc/pvpanic/pvpanic-pci.ko",
                               "kernel/drivers/misc/pvpanic/pvpanic-mmio.ko",
                           }));
}

TEST(KernelModules, CompressedModulesKeepTheirPathAndSayHowTheyArePacked) {
  KernelModules m = parseOk(
      "kernel/fs/fuse/fuse.ko.xz:\n"
      "kernel/fs/fuse/virtiofs.ko.zst: kernel/drivers/virtio/virtio.ko.gz "
      "kernel/fs/fuse/fuse.ko.xz\n"
      "kernel/drivers/virtio/virtio.ko.gz:\n",
      "kernel/fs/overlayfs/overlay.ko\n");
  ModulePlan plan = m.resolve(std::vector<std::string>{"virtiofs", "overlay"});
  EXPECT_EQ(plan.files, (std::vector<ModuleFile>{
                            {"kernel/fs/fuse/fuse.ko.xz", ModuleCompression::Xz},
                            {"kernel/drivers/virtio/virtio.ko.gz", ModuleCompression::Gzip},
                            {"kernel/fs/fuse/virtiofs.ko.zst", ModuleCompression::Zstd},
                        }));
  EXPECT_EQ(plan.wanted[1].status, ModuleStatus::BuiltIn);
}

// A hand-written index need not list dependencies transitively; the order still puts every file
// after what it needs, and a diamond's shared module comes once.
TEST(KernelModules, DependenciesResolveTransitivelyThroughDiamonds) {
  KernelModules m = parseOk(
      "a.ko: b.ko c.ko\n"
      "b.ko: d.ko\n"
      "c.ko: d.ko e.ko\n"
      "d.ko:\n"
      "e.ko: d.ko\n"
      "f.ko: a.ko\n");
  EXPECT_EQ(resolvePaths(m, {"f"}),
            (std::vector<std::string>{"d.ko", "e.ko", "c.ko", "b.ko", "a.ko", "f.ko"}));
  EXPECT_EQ(resolvePaths(m, {"b", "f"}),
            (std::vector<std::string>{"d.ko", "b.ko", "e.ko", "c.ko", "a.ko", "f.ko"}));
}

TEST(KernelModules, ToleratesBlankLinesTabsTrailingSpacesAndNoFinalNewline) {
  KernelModules m = parseOk(
      "\nx/a.ko:\tx/b.ko  x/c.ko \n\nx/b.ko:\n"
      "x/c.ko:",  // no final newline
      "\n\nx/d.ko");
  EXPECT_EQ(m.moduleCount(), 3u);
  EXPECT_EQ(m.status("d"), ModuleStatus::BuiltIn);
  EXPECT_EQ(resolvePaths(m, {"a"}), (std::vector<std::string>{"x/c.ko", "x/b.ko", "x/a.ko"}));
}

TEST(KernelModules, MalformedLinesAreErrorsNamingTheFileAndLine) {
  EXPECT_CONTAINS(parseError("a.ko:\nb.ko c.ko\n"), "modules.dep:2: expected");
  EXPECT_CONTAINS(parseError("a.ko:\n\n/kernel/b.ko:\n"), "modules.dep:3: module path");
  EXPECT_CONTAINS(parseError("kernel/../../etc/a.ko:\n"), "modules.dep:1:");
  EXPECT_CONTAINS(parseError("kernel//a.ko:\n"), "modules.dep:1:");
  EXPECT_CONTAINS(parseError("./a.ko:\n"), "modules.dep:1:");
  EXPECT_CONTAINS(parseError("kernel/a.o:\n"), "does not name a module");
  EXPECT_CONTAINS(parseError(":\n"), "modules.dep:1:");
  EXPECT_CONTAINS(parseError(" a.ko:\n"), "modules.dep:1:");
  EXPECT_CONTAINS(parseError("a.ko:\r\n"), "modules.dep:1:");  // CRLF line ends
  EXPECT_CONTAINS(parseError("a.ko: b.ko:\nb.ko:\n"), "modules.dep:1: dependency");
  EXPECT_CONTAINS(parseError("a.ko: ../b.ko\n"), "modules.dep:1: dependency");
  EXPECT_CONTAINS(parseError(std::string_view("a.ko:\nb\0.ko:\n", 13)), "modules.dep:2:");
  EXPECT_CONTAINS(parseError("a.ko:\n" + std::string(5000, 'x') + ".ko:\n"), "PATH_MAX");
  std::string long_line = "a.ko:" + std::string(KernelModules::kMaxLineLength, ' ') + "\n";
  EXPECT_CONTAINS(parseError("b.ko:\n" + long_line), "modules.dep:2: line is longer");
  // A line of exactly the limit is fine.
  EXPECT_TRUE(
      KernelModules::parse("a.ko:" + std::string(KernelModules::kMaxLineLength - 5, ' '), "").ok());
  // modules.builtin: one module path per line.
  EXPECT_CONTAINS(parseError("a.ko:\n", "kernel/b.ko\nkernel/c.ko: x\n"), "modules.builtin:2:");
  EXPECT_CONTAINS(parseError("a.ko:\n", "kernel/b\n"), "modules.builtin:1:");
}

TEST(KernelModules, FilesLargerThanTheBoundAreRefusedUnread) {
  const std::string huge(KernelModules::kMaxFileSize + 1, '\n');
  auto dep = KernelModules::parse(huge, "");
  ASSERT_FALSE(dep.ok());
  EXPECT_EQ(dep.error().code, Errc::OutOfRange);
  EXPECT_CONTAINS(dep.error().message, "modules.dep is");
  auto builtin = KernelModules::parse("", huge);
  ASSERT_FALSE(builtin.ok());
  EXPECT_CONTAINS(builtin.error().message, "modules.builtin is");
  // At the bound: read (blank lines only).
  EXPECT_TRUE(KernelModules::parse(std::string_view(huge).substr(1), "").ok());
}

TEST(KernelModules, DependenciesWithoutALineOfTheirOwnAreErrors) {
  std::string e = parseError("a.ko:\nb.ko: a.ko\nc.ko: b.ko kernel/missing.ko\n");
  EXPECT_CONTAINS(e, "modules.dep:3: c.ko depends on kernel/missing.ko");
  EXPECT_CONTAINS(e, "depmod");
}

TEST(KernelModules, ModulesListedTwiceAreErrors) {
  EXPECT_CONTAINS(parseError("a.ko:\nb.ko:\na.ko:\n"),
                  "modules.dep:3: a.ko is listed again (first at line 1)");
  // Two files of one name (an "updates" copy depmod would have chosen between).
  EXPECT_CONTAINS(parseError("kernel/fs/fuse.ko:\nupdates/fuse.ko.xz:\n"),
                  "modules.dep:2: module fuse (updates/fuse.ko.xz) is listed again");
  EXPECT_CONTAINS(parseError("kernel/pvpanic-pci.ko:\nextra/pvpanic_pci.ko:\n"), "modules.dep:2:");
}

TEST(KernelModules, DependencyCyclesAreErrors) {
  EXPECT_CONTAINS(parseError("a.ko: a.ko\n"),
                  "modules.dep:1: dependency cycle of 1 modules: a.ko -> a.ko");
  EXPECT_CONTAINS(parseError("x.ko:\na.ko: b.ko\nb.ko: c.ko x.ko\nc.ko: a.ko\n"),
                  "modules.dep:4: dependency cycle of 3 modules: a.ko -> b.ko -> c.ko -> a.ko");
  // A cycle not reachable from anything asked for is still found: the index is checked whole.
  EXPECT_CONTAINS(parseError("fuse.ko:\np.ko: q.ko\nq.ko: p.ko\n"), "dependency cycle");
}

// Generated indexes: a 200000-module chain (as deep as the file is long) resolves and a cycle
// through all of it is found, without recursion; and a transitive index as dense as a large
// distribution's (20000 modules, 40 dependencies each) parses and resolves in linear time.
TEST(KernelModules, DeepAndWideGeneratedIndexesStayLinear) {
  constexpr size_t kDepth = 200000;
  std::string chain;
  for (size_t i = 0; i < kDepth; ++i) {
    chain += fmt::format("kernel/m{}.ko:", i);
    if (i + 1 < kDepth) chain += fmt::format(" kernel/m{}.ko", i + 1);
    chain += '\n';
  }
  KernelModules deep = parseOk(chain);
  ModulePlan plan = deep.resolve(std::vector<std::string>{"m0"});
  ASSERT_EQ(plan.files.size(), kDepth);
  EXPECT_EQ(plan.files.front().path, fmt::format("kernel/m{}.ko", kDepth - 1));
  EXPECT_EQ(plan.files.back().path, "kernel/m0.ko");

  std::string cyclic = chain;
  cyclic.insert(cyclic.size() - 1, " kernel/m0.ko");  // the last module needs the first
  std::string e = parseError(cyclic);
  EXPECT_CONTAINS(e, fmt::format("modules.dep:{}: dependency cycle of {} modules", kDepth, kDepth));
  EXPECT_CONTAINS(e, "kernel/m0.ko -> kernel/m1.ko");
  EXPECT_CONTAINS(e, " -> ... -> ");
  EXPECT_LT(e.size(), 400u);

  constexpr size_t kModules = 20000, kDeps = 40;
  std::string wide;
  for (size_t i = 0; i < kModules; ++i) {
    wide += fmt::format("kernel/drivers/w{}.ko:", i);
    for (size_t d = 1; d <= kDeps && d <= i; ++d)
      wide += fmt::format(" kernel/drivers/w{}.ko", i - d);
    wide += '\n';
  }
  KernelModules dense = parseOk(wide);
  std::vector<std::string> all;
  for (size_t i = 0; i < kModules; ++i) all.push_back(fmt::format("w{}", i));
  ModulePlan every = dense.resolve(all);
  ASSERT_EQ(every.files.size(), kModules);
  // Dependencies before dependents: w(i) needs w(i-1)..w(i-40), so the order is w0, w1, ...
  for (size_t i = 0; i < kModules; ++i) {
    ASSERT_EQ(every.files[i].path, fmt::format("kernel/drivers/w{}.ko", i));
  }
}

TEST(KernelModules, LoadReadsTheDirectoryAndSaysHowToMakeAMissingIndex) {
  TempDir root;
  std::string dir = root.mkdir("lib/modules/6.1.0-test");
  auto missing = KernelModules::load(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  EXPECT_CONTAINS(missing.error().message, dir + "/modules.dep");
  EXPECT_CONTAINS(missing.error().message, "depmod -b " + root.path() + " 6.1.0-test");
  // The trailing '/' a user may type changes nothing.
  auto slash = KernelModules::load(dir + "/");
  ASSERT_FALSE(slash.ok());
  EXPECT_CONTAINS(slash.error().message, "depmod -b " + root.path() + " 6.1.0-test");

  // Without modules.builtin (older kernels): nothing is built in.
  root.write("lib/modules/6.1.0-test/modules.dep", kDebianDep);
  auto loaded = KernelModules::load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->builtinCount(), 0u);
  EXPECT_EQ(pathsOf(loaded->resolve(kEmberModules)).size(), 11u);

  root.write("lib/modules/6.1.0-test/modules.builtin", "kernel/fs/fuse/fuse.ko\n");
  loaded = KernelModules::load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->status("fuse"), ModuleStatus::BuiltIn);

  // Errors name the file by its full path.
  root.write("lib/modules/6.1.0-test/modules.builtin", "x\n");
  auto bad = KernelModules::load(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_CONTAINS(bad.error().message, dir + "/modules.builtin:1:");
}

TEST(KernelModules, LoadRefusesMissingDirectoriesAndUnreadableIndexes) {
  TempDir root;
  auto none = KernelModules::load(root.at("no-such-dir"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::NotFound);
  EXPECT_CONTAINS(none.error().message, "no-such-dir");
  EXPECT_FALSE(KernelModules::load(root.write("a-file", "x")).ok());

  // A modules.dep that is not a regular file: refused, with the hint (for a directory outside
  // any lib/modules, the general form).
  root.mkdir("mods/modules.dep");
  auto not_file = KernelModules::load(root.at("mods"));
  ASSERT_FALSE(not_file.ok());
  EXPECT_CONTAINS(not_file.error().message, "modules.dep");
  EXPECT_CONTAINS(not_file.error().message, "depmod -b BASE VERSION");

  root.write("other/modules.dep", "a.ko:\n");
  root.mkdir("other/modules.builtin");
  auto builtin_dir = KernelModules::load(root.at("other"));
  ASSERT_FALSE(builtin_dir.ok());
  EXPECT_CONTAINS(builtin_dir.error().message, "modules.builtin");
}

}  // namespace
}  // namespace ember::vmm
