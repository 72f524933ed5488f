// ember exec's host side end to end on the real /dev/kvm: the test guest (tests=virtio-console-
// ports) plays the guest init, finding ember.stdout, ember.stderr and ember.status through the
// multiport console's control protocol and writing what each case asks for. ember exec must
// pass the command's stdout and stderr through and exit with the status the status port gives
// (7, 128+N, 127 with one line, 125 with one line for a setup error); every hostile status (a
// guest-controlled value) is 125 with one line naming the kernel log, which is kept with the
// scratch directory; host-side set-up errors are 125 with one line; no virtiofsd outlives ember.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "Process.h"

namespace ember::test {
namespace {

const char* kVirtiofsd = "/usr/lib/qemu/virtiofsd";

std::string fileText(const std::string& path) {
  auto bytes = readFile(path);
  return std::string(bytes.begin(), bytes.end());
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

size_t lineCount(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// $TMPDIR is a TempDir of the test's, where ember exec makes its scratch directory.
class ExecSetupError : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv("TMPDIR");
    if (old != nullptr) saved_tmpdir_ = old;
    had_tmpdir_ = old != nullptr;
    ::setenv("TMPDIR", tmp.path().c_str(), 1);
  }
  void TearDown() override {
    if (had_tmpdir_) {
      ::setenv("TMPDIR", saved_tmpdir_.c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  // ember exec of `true` with the test guest as the kernel, writing `writes` (ports.write=).
  ProcessResult exec(const std::string& writes, const std::vector<std::string>& options = {},
                     const std::string& more_append = "") {
    std::vector<std::string> args{"exec", "--kernel", EMBER_TESTGUEST, "--modules", "none"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(),
                {"--append", "tests=virtio-console-ports ports.write=" + writes + more_append, "--",
                 "true"});
    ProcessOptions o;
    o.timeout_ms = 120000;
    return runEmber(args, o);
  }

  // ember exec's scratch directories left in $TMPDIR.
  std::vector<std::string> scratchDirs() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(tmp.path().c_str());
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name).rfind("ember-exec.", 0) == 0) {
        out.push_back(tmp.file(e->d_name));
      }
    }
    ::closedir(d);
    return out;
  }

  // A run the guest got wrong: 125 and exactly one line on stderr, "ember exec: ...", naming
  // `needle` and the kernel log, which is kept (with its scratch directory) and holds the test
  // guest's console.
  void expectGuestFailure(const ProcessResult& r, const std::string& needle) {
    EXPECT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 125) << describe(r);
    EXPECT_EQ(lineCount(r.err), 1u) << describe(r);
    EXPECT_EQ(r.err.rfind("ember exec: ", 0), 0u) << describe(r);
    EXPECT_TRUE(contains(r.err, needle)) << "expected '" << needle << "'\n" << describe(r);
    const std::string marker = "(kernel log: ";
    size_t at = r.err.find(marker);
    size_t end = r.err.rfind(')');
    ASSERT_NE(at, std::string::npos) << describe(r);
    ASSERT_NE(end, std::string::npos);
    std::string log = r.err.substr(at + marker.size(), end - at - marker.size());
    auto dirs = scratchDirs();
    ASSERT_EQ(dirs.size(), 1u) << "the scratch directory is kept after a failure";
    EXPECT_EQ(log, dirs[0] + "/kernel.log");
    std::string text = fileText(log);
    EXPECT_TRUE(contains(text, "PASS virtio-console-ports")) << "kernel log " << log << ":\n"
                                                             << text;
  }

  // A host-side set-up error: 125, nothing on stdout, one line "ember exec: ..." naming
  // `needle`, and no scratch directory left.
  void expectSetupError(const ProcessResult& r, const std::string& needle) {
    EXPECT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 125) << describe(r);
    EXPECT_TRUE(r.out.empty()) << describe(r);
    EXPECT_EQ(lineCount(r.err), 1u) << describe(r);
    EXPECT_EQ(r.err.rfind("ember exec: ", 0), 0u) << describe(r);
    EXPECT_TRUE(contains(r.err, needle)) << "expected '" << needle << "'\n" << describe(r);
    EXPECT_TRUE(scratchDirs().empty()) << "a scratch directory was left in $TMPDIR";
  }

  TempDir tmp;

 private:
  std::string saved_tmpdir_;
  bool had_tmpdir_ = false;
};

// Runs that boot the test guest, with virtiofsd serving the root.
class Exec : public ExecSetupError {
 protected:
  void SetUp() override {
    ExecSetupError::SetUp();
    if (::access(kVirtiofsd, X_OK) != 0) GTEST_SKIP() << kVirtiofsd << " is not installed";
    if (::geteuid() != 0) GTEST_SKIP() << "virtiofsd needs root";
  }
};

const std::string kOutAndErr = "ember.stdout:out%0a,ember.stderr:err%0a,";

TEST_F(Exec, TheCommandsOutputsAndExitStatusPassThrough) {
  auto r = exec(kOutAndErr + "ember.status:exit%207%0a");
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 7) << describe(r);
  EXPECT_EQ(r.out, "out\n") << "only the command's stdout: the guest's console is the log\n"
                            << describe(r);
  EXPECT_TRUE(contains(r.err, "err\n")) << describe(r);
  EXPECT_FALSE(contains(r.err, "ember exec:")) << describe(r);
  EXPECT_TRUE(scratchDirs().empty()) << "the scratch directory is removed after a run that worked";
}

TEST_F(Exec, AFullBufferOfOutputArrivesWhole) {
  // 64 KiB in one transmit buffer, the most ember takes in one; the status is repeated too, and
  // only its first line counts.
  auto r = exec("ember.stdout:0123456789abcdef,ember.status:exit%200%0a", {}, " ports.repeat=4096");
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << r.err;
  std::string expected;
  for (int i = 0; i < 4096; ++i) expected += "0123456789abcdef";
  EXPECT_EQ(r.out.size(), expected.size());
  EXPECT_TRUE(r.out == expected) << "the bytes in order";
}

// A reader slower than the command loses nothing: past ember's 1 MiB output buffer the port's
// buffers wait in the guest's ring (virtio-console flow control), and the guest's writer with
// them, until the reader catches up.
TEST_F(Exec, ASlowReaderOfStdoutLosesNothing) {
  std::string writes;
  for (int i = 0; i < 33; ++i) writes += "ember.stdout:0123456789abcdef,";
  writes += "ember.status:exit%200%0a";
  std::string command =
      std::string(EMBER_BINARY) + " exec --kernel " + EMBER_TESTGUEST +
      " --modules none --append 'tests=virtio-console-ports ports.write=" + writes +
      " ports.repeat=4096' -- true | (sleep 6; wc -c)";
  ProcessOptions o;
  o.timeout_ms = 120000;
  auto r = runProcess({"/bin/sh", "-c", command}, o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out, std::to_string(33 * 4096 * 16) + "\n") << describe(r);
  EXPECT_FALSE(contains(r.err, "dropped")) << describe(r);
}

TEST_F(Exec, ASignalIs128PlusItsNumber) {
  auto r = exec("ember.status:signal%209%0a");
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 128 + 9) << describe(r);
  EXPECT_TRUE(r.out.empty()) << describe(r);
  EXPECT_FALSE(contains(r.err, "ember exec:")) << describe(r);
  EXPECT_TRUE(scratchDirs().empty());
}

TEST_F(Exec, ACommandNotFoundIs127WithOneLineNamingIt) {
  auto r = exec("ember.status:exec-failed%202%0a");
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 127) << describe(r);
  EXPECT_EQ(r.err, "ember exec: true: No such file or directory\n") << describe(r);
}

TEST_F(Exec, TheGuestsSetupErrorIs125WithItsMessage) {
  auto r = exec("ember.status:setup-error%20no%20virtiofs%0a");
  expectGuestFailure(r, "the guest could not set up: no virtiofs");
}

// Hostile-guest: the status port's text is the guest's, whatever it is.
TEST_F(Exec, AGarbageStatusIs125) {
  expectGuestFailure(exec("ember.status:bogus%0a"), "status line ember cannot read");
}

TEST_F(Exec, AnOutOfRangeExitStatusIs125) {
  expectGuestFailure(exec("ember.status:exit%20999%0a"), "from 0 to 255");
}

TEST_F(Exec, AStatusWithoutANewlineIs125) {
  expectGuestFailure(exec("ember.status:exit%207"), "does not end in a newline");
}

TEST_F(Exec, AnEightKibStatusIs125) {
  // 512 x 16 bytes and no newline: more than the status port's file takes, or ember reads.
  expectGuestFailure(exec("ember.status:0123456789abcdef", {}, " ports.repeat=512"),
                     "does not end in a newline");
  auto dirs = scratchDirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(readFile(dirs[0] + "/status").size(), 4096u) << "the guest's flood is cut at 4 KiB";
}

TEST_F(Exec, NoStatusAtAllIs125) {
  auto r = exec("ember.stdout:out%0a");
  expectGuestFailure(r, "without reporting the command's status");
  EXPECT_EQ(r.out, "out\n");
}

TEST_F(Exec, LogPutsTheKernelConsoleInTheFile) {
  std::string log = tmp.file("console.log");
  auto r = exec(kOutAndErr + "ember.status:exit%200%0a", {"--log", log});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out, "out\n") << describe(r);
  std::string text = fileText(log);
  EXPECT_TRUE(contains(text, "PASS virtio-console-ports")) << text;
  EXPECT_TRUE(scratchDirs().empty());
}

TEST_F(Exec, VerboseShowsTheKernelConsoleOnStderr) {
  auto r = exec(kOutAndErr + "ember.status:exit%200%0a", {"--verbose"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out, "out\n") << describe(r);
  EXPECT_EQ(linesStartingWith(r.err, "PASS virtio-console-ports").size(), 1u) << describe(r);
}

TEST_F(Exec, NoVirtiofsdOutlivesEmber) {
  std::string root = tmp.file("root");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  bool seen = false;
  ProcessOptions o;
  o.timeout_ms = 120000;
  o.on_tick = [&](pid_t, const std::string&) { seen = seen || !virtiofsdFor(root).empty(); };
  auto r = runEmber(
      {"exec", "--kernel", EMBER_TESTGUEST, "--modules", "none", "--root", root, "--append",
       "tests=virtio-console-ports,sleep ports.write=ember.status:exit%200%0a "
       "sleep.ms=1000",
       "--", "true"},
      o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(seen) << "virtiofsd for " << root << " was never seen while ember ran";
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = virtiofsdFor(root).empty();
    if (!gone) ::usleep(10000);
  }
  EXPECT_TRUE(gone) << "virtiofsd outlived ember exec";
}

// Host-side set-up errors: 125 and one line, before or instead of a guest.
TEST_F(ExecSetupError, NoVirtiofsdIsOneLine) {
  ::setenv("EMBER_VIRTIOFSD", "/nonexistent/virtiofsd", 1);
  auto r = exec("ember.status:exit%200%0a");
  ::unsetenv("EMBER_VIRTIOFSD");
  expectSetupError(r, "virtiofsd");
}

TEST_F(ExecSetupError, ARootThatDoesNotExistIsOneLine) {
  expectSetupError(exec("ember.status:exit%200%0a", {"--root", "/nonexistent"}), "/nonexistent");
}

TEST_F(ExecSetupError, AKernelThatIsNoBzImageNeedsModules) {
  expectSetupError(runEmber({"exec", "--kernel", EMBER_TESTGUEST, "--append",
                             "tests=virtio-console-ports", "--", "true"}),
                   "--modules");
}

TEST_F(ExecSetupError, AModulesDirectoryWithoutModulesDepIsOneLine) {
  std::string modules = tmp.file("modules");
  ASSERT_EQ(::mkdir(modules.c_str(), 0755), 0);
  auto r = runEmber({"exec", "--kernel", EMBER_TESTGUEST, "--modules", modules, "--", "true"});
  expectSetupError(r, "modules.dep");
}

TEST_F(ExecSetupError, NoCommandWithoutATerminalIsOneLine) {
  ProcessOptions o;
  o.stdin_data = "";  // a pipe, not a terminal
  expectSetupError(runEmber({"exec", "--kernel", EMBER_TESTGUEST, "--modules", "none"}, o),
                   "no command given");
}

TEST_F(ExecSetupError, AnUnknownOptionIsOneLine) {
  expectSetupError(
      runEmber({"exec", "--kernel", EMBER_TESTGUEST, "--no-such-option", "--", "true"}),
      "--no-such-option");
}

}  // namespace
}  // namespace ember::test
