#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "vmm/ExecSession.h"
#include "vmm/init/EmbeddedInit.h"
#include "vmm/init/ExecStatus.h"
#include "vmm/testing/CpioReader.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

using devices::ExitRequest;
using testing::TempDir;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// A kernel's modules directory the way depmod leaves it: virtio_console built in, virtio_pci
// with a dependency, virtiofs needing fuse, overlay; no pvpanic (which ember exec can do without).
void writeModules(const TempDir& dir, bool with_overlay = true) {
  std::string dep =
      "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko\n"
      "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
      "kernel/fs/fuse/fuse.ko:\n"
      "kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko\n";
  if (with_overlay) dep += "kernel/fs/overlayfs/overlay.ko.xz:\n";
  dir.write("modules/modules.dep", dep);
  dir.write("modules/modules.builtin", "kernel/drivers/char/virtio_console.ko\n");
  for (const char* ko : {"kernel/drivers/virtio/virtio_pci.ko",
                         "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/fs/fuse/fuse.ko",
                         "kernel/fs/fuse/virtiofs.ko", "kernel/fs/overlayfs/overlay.ko.xz"}) {
    dir.write(std::string("modules/") + ko, std::string("module ") + ko);
  }
}

struct Fixture {
  TempDir dir;
  ExecRequest request;
  ExecHost host;

  Fixture() {
    writeModules(dir);
    request.kernel = dir.write("bzImage", "not read when --modules is given");
    request.modules = dir.at("modules");
    request.root = dir.mkdir("root");
    request.argv = {"make", "-C", "tools/testing/selftests", "run_tests"};
    host.cwd = dir.mkdir("root/src/linux");
    host.uid = 1000;
    host.gid = 100;
    host.environment = {"PATH=/opt/bin:/usr/bin", "TERM=xterm", "SECRET_TOKEN=x", "LC_ALL=C"};
    host.tmp_dir = dir.mkdir("tmp");
  }
};

const testing::CpioEntry* entry(const testing::CpioArchive& archive, const std::string& name) {
  auto it = std::find_if(archive.entries.begin(), archive.entries.end(),
                         [&](const testing::CpioEntry& e) { return e.name == name; });
  return it == archive.entries.end() ? nullptr : &*it;
}

TEST(ExecSession, PlansTheMachineTheJobAndTheInitramfs) {
  Fixture f;
  f.request.shares = {{f.dir.mkdir("out"), "/mnt/out", false}, {f.dir.mkdir("in"), "", true}};
  f.request.timeout = 30;
  auto session = ExecSession::prepare(f.request, f.host);
  ASSERT_TRUE(session.ok()) << session.error().message;
  const MachineConfig& config = (*session)->machineConfig();
  const init::ExecJob& job = (*session)->job();

  // The root read-only (an overlay in the guest), the shares with their own tags.
  ASSERT_EQ(config.filesystems.size(), 3u);
  EXPECT_EQ(config.filesystems[0].dir, f.request.root);
  EXPECT_EQ(config.filesystems[0].tag, ExecSession::kRootTag);
  EXPECT_TRUE(config.filesystems[0].readonly);
  EXPECT_EQ(config.filesystems[1].tag, "ember-share0");
  EXPECT_FALSE(config.filesystems[1].readonly);
  EXPECT_TRUE(config.filesystems[2].readonly);
  EXPECT_EQ(job.root_access, init::Access::ReadOnly);
  ASSERT_EQ(job.shares.size(), 2u);
  EXPECT_EQ(job.shares[0], (init::ExecShare{"ember-share0", "/mnt/out", init::Access::ReadWrite}));
  EXPECT_EQ(job.shares[1].guest_path, f.dir.at("in"));  // default: the host's path
  EXPECT_EQ(job.shares[1].access, init::Access::ReadOnly);

  // The command as the user ran it: the cwd seen through the root, the ids, a few variables.
  EXPECT_EQ(job.cwd, "/src/linux");
  EXPECT_EQ(job.argv, f.request.argv);
  EXPECT_EQ(job.uid, 1000u);
  EXPECT_EQ(job.gid, 100u);
  EXPECT_EQ(job.env,
            (std::vector<std::string>{"PATH=/opt/bin:/usr/bin", "TERM=xterm", "LC_ALL=C"}));

  // Three named ports, the kernel console into the log, pvpanic, no stdin, the timeout.
  ASSERT_EQ(config.serial_ports.size(), 3u);
  EXPECT_EQ(config.serial_ports[0].name, "ember.stdout");
  EXPECT_EQ(config.serial_ports[0].kind, SerialPortConfig::Kind::Stdout);
  EXPECT_EQ(config.serial_ports[1].kind, SerialPortConfig::Kind::Stderr);
  EXPECT_EQ(config.serial_ports[2].kind, SerialPortConfig::Kind::File);
  EXPECT_EQ(config.serial_log, (*session)->kernelLog());
  EXPECT_EQ(config.backend_log, (*session)->kernelLog());
  EXPECT_EQ(config.serial_log_limit, 64ULL << 20) << "the guest cannot fill $TMPDIR";
  EXPECT_TRUE(config.pvpanic);
  EXPECT_FALSE(config.stdin_input);
  EXPECT_EQ(config.timeout, 30.0);
  EXPECT_EQ(config.memory, 512ULL << 20);
  EXPECT_EQ(config.cmdline, "console=ttyS0 panic=-1 reboot=k rdinit=/init quiet");

  // The archive: the init, the job (which decodes to the session's), the modules in load order.
  auto archive = testing::readCpioArchive(config.initrd_image);
  ASSERT_TRUE(archive.ok()) << archive.error().message;
  const auto* init_entry = entry(*archive, "init");
  ASSERT_NE(init_entry, nullptr);
  EXPECT_EQ(init_entry->mode, 0100755u);
  auto embedded = init::embeddedInit();
  EXPECT_TRUE(std::equal(init_entry->data.begin(), init_entry->data.end(), embedded.begin(),
                         embedded.end()));
  const auto* console = entry(*archive, "dev/console");
  ASSERT_NE(console, nullptr);
  EXPECT_EQ(console->rdev_major, 5u);
  const auto* job_entry = entry(*archive, "ember/job");
  ASSERT_NE(job_entry, nullptr);
  std::string error;
  auto decoded =
      init::ExecJob::decode(std::string(job_entry->data.begin(), job_entry->data.end()), &error);
  ASSERT_TRUE(decoded) << error;
  EXPECT_EQ(*decoded, job);
  EXPECT_EQ(job.modules, (std::vector<std::string>{
                             "/ember/modules/kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                             "/ember/modules/kernel/drivers/virtio/virtio_pci.ko",
                             "/ember/modules/kernel/fs/fuse/fuse.ko",
                             "/ember/modules/kernel/fs/fuse/virtiofs.ko",
                             "/ember/modules/kernel/fs/overlayfs/overlay.ko.xz",
                         }));
  const auto* fuse = entry(*archive, "ember/modules/kernel/fs/fuse/fuse.ko");
  ASSERT_NE(fuse, nullptr);
  EXPECT_EQ(std::string(fuse->data.begin(), fuse->data.end()), "module kernel/fs/fuse/fuse.ko");
}

TEST(ExecSession, TheScratchDirectoryGoesWithTheSession) {
  Fixture f;
  std::string log;
  {
    auto session = ExecSession::prepare(f.request, f.host);
    ASSERT_TRUE(session.ok()) << session.error().message;
    log = (*session)->kernelLog();
    EXPECT_EQ(log.rfind(f.host.tmp_dir + "/ember-exec.", 0), 0u) << log;
  }
  EXPECT_NE(::access(log.substr(0, log.rfind('/')).c_str(), F_OK), 0) << "left behind";
}

TEST(ExecSession, AFailureKeepsTheScratchDirectoryOnlyWhenItsLogHasSomething) {
  Fixture f;
  std::string log;
  {
    auto session = ExecSession::prepare(f.request, f.host);
    ASSERT_TRUE(session.ok()) << session.error().message;
    log = (*session)->kernelLog();
    ExecOutcome o = (*session)->finish(ExitRequest::startupError("--fs /: virtiofsd is not at /x"));
    EXPECT_EQ(o.status, 125);
    EXPECT_EQ(o.message, "--fs /: virtiofsd is not at /x") << "no log to point at";
  }
  EXPECT_NE(::access(log.substr(0, log.rfind('/')).c_str(), F_OK), 0) << "left behind";
  {
    auto session = ExecSession::prepare(f.request, f.host);
    ASSERT_TRUE(session.ok()) << session.error().message;
    log = (*session)->kernelLog();
    std::ofstream(log) << "the guest's console\n";
    ExecOutcome o = (*session)->finish(ExitRequest::powerOff("guest powered off (ACPI S5)"));
    EXPECT_EQ(o.status, 125);
    EXPECT_CONTAINS(o.message, "(kernel log: " + log + ")");
  }
  EXPECT_EQ(::access(log.c_str(), F_OK), 0) << "the log the line points at is kept";
}

TEST(ExecSession, ACwdOutsideTheRootStartsAtSlashAndTheRootRwIsWrittenThrough) {
  Fixture f;
  f.host.cwd = f.dir.path();
  f.request.rw = true;
  auto session = ExecSession::prepare(f.request, f.host);
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_EQ((*session)->job().cwd, "/");
  EXPECT_EQ((*session)->job().root_access, init::Access::ReadWrite);
  EXPECT_FALSE((*session)->machineConfig().filesystems[0].readonly);
}

TEST(ExecSession, TheUsersInitrdComesFirst) {
  Fixture f;
  std::vector<uint8_t> theirs = {'0', '7', '0', '7', '0', '1', 'x'};  // any bytes: not parsed
  f.request.initrd = f.dir.write("initrd.img", std::span<const uint8_t>(theirs));
  auto session = ExecSession::prepare(f.request, f.host);
  ASSERT_TRUE(session.ok()) << session.error().message;
  const auto& image = (*session)->machineConfig().initrd_image;
  ASSERT_GT(image.size(), 8u);
  EXPECT_TRUE(std::equal(theirs.begin(), theirs.end(), image.begin()));
  auto archive = testing::readCpioArchive(image, 8);  // padded to 4 bytes after the user's 7
  ASSERT_TRUE(archive.ok()) << archive.error().message;
  EXPECT_NE(entry(*archive, "init"), nullptr);
}

TEST(ExecSession, VerboseSendsTheKernelConsoleToStderrAndTellsTheInit) {
  Fixture f;
  f.request.verbose = true;
  f.request.append = "loglevel=8";
  auto session = ExecSession::prepare(f.request, f.host);
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_EQ((*session)->machineConfig().serial_log, "-");
  EXPECT_EQ((*session)->machineConfig().backend_log, "");
  EXPECT_EQ((*session)->machineConfig().cmdline,
            "console=ttyS0 panic=-1 reboot=k rdinit=/init loglevel=8");
  EXPECT_TRUE((*session)->job().verbose);
}

TEST(ExecSession, NoCommandIsAnInteractiveShellOnlyOnATerminal) {
  Fixture f;
  f.request.argv.clear();
  auto refused = ExecSession::prepare(f.request, f.host);
  ASSERT_FALSE(refused.ok());
  EXPECT_CONTAINS(refused.error().message, "stdin is not a terminal");
  f.host.stdin_is_terminal = true;
  auto shell = ExecSession::prepare(f.request, f.host);
  ASSERT_TRUE(shell.ok()) << shell.error().message;
  EXPECT_EQ((*shell)->machineConfig().console, ConsoleKind::Virtio);
  EXPECT_TRUE((*shell)->machineConfig().stdin_input);
  EXPECT_TRUE((*shell)->job().argv.empty());
}

TEST(ExecSession, RefusesWhatCannotWorkWithOneLine) {
  {
    Fixture f;
    f.request.root = f.dir.at("nonexistent");
    auto r = ExecSession::prepare(f.request, f.host);
    ASSERT_FALSE(r.ok());
    EXPECT_CONTAINS(r.error().message, "--root " + f.dir.at("nonexistent"));
  }
  {
    Fixture f;
    f.request.root = f.dir.write("a-file", "x");
    auto r = ExecSession::prepare(f.request, f.host);
    ASSERT_FALSE(r.ok());
    EXPECT_CONTAINS(r.error().message, "not a directory");
  }
  {
    Fixture f;
    f.request.shares = {{f.dir.mkdir("s"), "/", false}};
    auto r = ExecSession::prepare(f.request, f.host);
    ASSERT_FALSE(r.ok());
    EXPECT_CONTAINS(r.error().message, "the guest's / is the root");
  }
  {
    Fixture f;
    f.request.modules = f.dir.mkdir("no-index");
    auto r = ExecSession::prepare(f.request, f.host);
    ASSERT_FALSE(r.ok());
    EXPECT_CONTAINS(r.error().message, "modules.dep");
  }
  {
    // A bzImage that is not one: its release cannot be read for the default modules directory.
    Fixture f;
    f.request.modules.clear();
    auto r = ExecSession::prepare(f.request, f.host);
    ASSERT_FALSE(r.ok());
    EXPECT_CONTAINS(r.error().message, "--modules");
  }
}

TEST(ExecSession, AKernelWithoutWhatTheGuestNeedsIsNamed) {
  Fixture f;
  TempDir other;
  writeModules(other, /*with_overlay=*/false);
  f.request.modules = other.at("modules");
  auto r = ExecSession::prepare(f.request, f.host);
  ASSERT_FALSE(r.ok());
  EXPECT_CONTAINS(r.error().message, "the kernel has no overlay");
  // --rw needs no overlay.
  f.request.rw = true;
  EXPECT_TRUE(ExecSession::prepare(f.request, f.host).ok());
}

TEST(ExecSession, ModulesNoneTakesNoModules) {
  Fixture f;
  f.request.modules.clear();
  f.request.no_modules = true;
  auto session = ExecSession::prepare(f.request, f.host);
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_TRUE((*session)->job().modules.empty());
}

TEST(ExecEnvironment, KeepsTheUsersTerminalAndLocaleAndAlwaysHasAPath) {
  auto env = execEnvironment({"HOME=/root", "AWS_SECRET=x", "TERM=vt100", "LANG=C.UTF-8",
                              "LC_CTYPE=C", "TZ=UTC", "SSH_AUTH_SOCK=/run/x", "broken"});
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/"
                                           "bin:/sbin:/bin",
                                           "HOME=/root", "TERM=vt100", "LANG=C.UTF-8", "LC_CTYPE=C",
                                           "TZ=UTC"}));
}

ExecOutcome outcomeOf(const ExitRequest& exit, std::optional<std::string> status) {
  return execOutcome(exit, status, "/tmp/k.log", {"make", "check"});
}

TEST(ExecOutcome, TheCommandsOwnStatus) {
  auto off = ExitRequest::powerOff("guest powered off (ACPI S5)");
  EXPECT_EQ(outcomeOf(off, "exit 0\n").status, 0);
  ExecOutcome seven = outcomeOf(off, "exit 7\n");
  EXPECT_EQ(seven.status, 7);
  EXPECT_EQ(seven.message, "");
  EXPECT_EQ(outcomeOf(off, "signal 9\n").status, 137);
  ExecOutcome missing = outcomeOf(off, "exec-failed 2\n");
  EXPECT_EQ(missing.status, 127);
  EXPECT_EQ(missing.message, "make: No such file or directory");
  EXPECT_EQ(outcomeOf(off, "exec-failed 13\n").status, 126);
  // Only the first line counts: whatever follows it is not the init's.
  EXPECT_EQ(outcomeOf(off, "exit 3\nexit 4\n").status, 3);
}

TEST(ExecOutcome, FailuresOfEmberOrTheGuestAre125WithOneLine) {
  auto off = ExitRequest::powerOff("guest powered off (ACPI S5)");
  ExecOutcome setup = outcomeOf(off, "setup-error mounting ember-root: No such device\n");
  EXPECT_EQ(setup.status, 125);
  EXPECT_EQ(setup.message,
            "the guest could not set up: mounting ember-root: No such device (kernel log: "
            "/tmp/k.log)");
  for (const auto& status : std::vector<std::optional<std::string>>{
           std::nullopt, "", "exit 7", "exit 999\n", "bogus\n", std::string(5000, 'x')}) {
    ExecOutcome o = outcomeOf(off, status);
    EXPECT_EQ(o.status, 125);
    EXPECT_CONTAINS(o.message, "the guest stopped (guest powered off (ACPI S5))");
    EXPECT_EQ(o.message.find('\n'), std::string::npos);
  }
  // Text with no newline (or none within what ember reads) is an unfinished line, said so.
  for (const auto& status : {std::string("exit 7"), std::string(5000, 'x')}) {
    EXPECT_CONTAINS(outcomeOf(off, status).message, "(status line does not end in a newline)");
  }
  ExecOutcome crash =
      outcomeOf(ExitRequest::vcpuCrash({0, "SHUTDOWN", std::nullopt}, "triple fault"), "");
  EXPECT_EQ(crash.status, 125);
  ExecOutcome startup = execOutcome(ExitRequest::startupError("--fs /: virtiofsd is not at /x"),
                                    std::nullopt, "", {"true"});
  EXPECT_EQ(startup.status, 125);
  EXPECT_EQ(startup.message, "--fs /: virtiofsd is not at /x");
}

TEST(ExecOutcome, PanicTimeoutAndSignalsWinOverAnyStatus) {
  ExecOutcome panic = outcomeOf(ExitRequest::guestPanic(), "exit 0\n");
  EXPECT_EQ(panic.status, 255);
  EXPECT_EQ(panic.message, "the guest kernel panicked (kernel log: /tmp/k.log)");
  ExecOutcome timeout = outcomeOf(ExitRequest::timeout(5), std::nullopt);
  EXPECT_EQ(timeout.status, 124);
  EXPECT_CONTAINS(timeout.message, "--timeout of 5 s");
  ExecOutcome signal = outcomeOf(ExitRequest::fromSignal(15), std::nullopt);
  EXPECT_EQ(signal.status, 143);
  EXPECT_CONTAINS(signal.message, "TERM");
}

}  // namespace
}  // namespace ember::vmm
