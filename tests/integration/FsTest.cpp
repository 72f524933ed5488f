// --fs on the real ember with Debian's virtiofsd (vhost-user negotiation at start-up, the device
// on PCI, stopped at exit): no virtiofsd and no socket left behind however ember ends (power-off,
// SIGKILL), a backend killed mid-run is one warning and the VM goes on, and each set-up error is
// one line. The guest's own use of the file system is tested in the emulated-SVM L1.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "Process.h"

namespace ember::test {
namespace {

const char* kVirtiofsd = "/usr/lib/qemu/virtiofsd";

std::vector<std::string> socketDirs() {
  std::vector<std::string> out;
  DIR* tmp = ::opendir("/tmp");
  while (dirent* e = ::readdir(tmp)) {
    if (std::string(e->d_name).rfind("ember-virtiofsd-", 0) == 0) out.push_back(e->d_name);
  }
  ::closedir(tmp);
  return out;
}

bool waitGone(const std::string& dir) {
  for (int i = 0; i < 200; ++i) {
    if (virtiofsdFor(dir).empty()) return true;
    ::usleep(10000);
  }
  return false;
}

class Fs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kVirtiofsd, X_OK) != 0) GTEST_SKIP() << kVirtiofsd << " is not installed";
    if (::geteuid() != 0) GTEST_SKIP() << "virtiofsd needs root";
    share = dir.file("share");
    ::mkdir(share.c_str(), 0755);
    before = socketDirs();
  }
  TempDir dir;
  std::string share;
  std::vector<std::string> before;
};

TEST_F(Fs, VirtiofsdStartsNegotiatesAndIsStoppedAtPowerOff) {
  std::string report = dir.file("record.json");
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", share + ",tag=shared",
                     "--log-level", "debug", "--report", report, "--cmdline", "tests=pci-enum"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("virtiofsd started"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("1af4:105a"), std::string::npos) << "a modern virtio-fs function on PCI\n"
                                                        << describe(r);
  std::ifstream in(report);
  auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["id"], "fs0");
  EXPECT_EQ(j["devices"][0]["type"], "virtio-fs");
  EXPECT_EQ(j["devices"][0]["name"], "virtio-fs shared");
  EXPECT_TRUE(waitGone(share)) << "virtiofsd outlived ember";
  EXPECT_EQ(socketDirs(), before) << "a socket directory was left behind";
}

// The test guest as a FUSE client on the real virtiofsd: it reads a host file through the
// device's rings (handed to virtiofsd) and writes a new one that the host then finds.
TEST_F(Fs, TheGuestReadsAndWritesHostFilesThroughVirtiofsd) {
  std::ofstream(share + "/greeting") << "hello-from-the-host\n";
  std::string report = dir.file("record.json");
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", share + ",tag=shared", "--report",
                     report, "--cmdline",
                     "tests=virtio-fs fs.tag=shared fs.file=greeting fs.expect=hello-from-the-host "
                     "fs.write=out.txt"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS virtio-fs modern").size(), 1u) << describe(r);
  std::ifstream in(share + "/out.txt");
  std::string written;
  std::getline(in, written);
  EXPECT_EQ(written, "written-by-the-test-guest");
  std::ifstream rec(report);
  auto j = nlohmann::json::parse(rec);
  EXPECT_EQ(j["devices"][0]["face"], "modern");
  EXPECT_GE(j["devices"][0]["activations"].get<int>(), 1);
  EXPECT_EQ(j["devices"][0]["kicks"]["userspace"], 0) << "the kicks went to virtiofsd directly";
}

TEST_F(Fs, ReadonlyMeansTheGuestCannotWriteWhateverItSends) {
  std::ofstream(share + "/greeting") << "hello-from-the-host\n";
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", share + ",readonly", "--cmdline",
                     "tests=virtio-fs fs.file=greeting fs.expect=hello-from-the-host "
                     "fs.write=out.txt"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "FAIL virtio-fs").size(), 1u) << describe(r);
  EXPECT_NE(r.out.find("opcode 35 failed with errno 30"), std::string::npos)
      << "FUSE_CREATE refused with EROFS\n"
      << describe(r);
  EXPECT_NE(r.out.find("read 'hello-from-the-host'"), std::string::npos) << describe(r);
  EXPECT_NE(::access((share + "/out.txt").c_str(), F_OK), 0) << "nothing reached the host";
}

// The host's root itself, as ember exec shares it: virtiofsd cannot pivot_root into / and runs
// with its chroot sandbox there; readonly still refuses the guest's write.
TEST_F(Fs, TheHostRootIsSharedReadOnly) {
  const std::string name = "ember-fs-test-" + std::to_string(::getpid());
  const std::string probe = "/" + name;
  { std::ofstream(probe) << "hello-from-the-root\n"; }
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", "/,tag=root,readonly", "--cmdline",
                     "tests=virtio-fs fs.tag=root fs.file=" + name +
                         " fs.expect=hello-from-the-root fs.write=" + name + ".out"});
  ::unlink(probe.c_str());
  bool leaked = ::access((probe + ".out").c_str(), F_OK) == 0;
  ::unlink((probe + ".out").c_str());
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_NE(r.out.find("read 'hello-from-the-root'"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("opcode 35 failed with errno 30"), std::string::npos) << describe(r);
  EXPECT_FALSE(leaked) << "the guest's write reached the host's /";
}

TEST_F(Fs, SigkillOfEmberTakesVirtiofsdWithIt) {
  ProcessOptions o;
  o.signal_after_ms = 1500;
  o.signal = SIGKILL;
  o.timeout_ms = 20000;
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", share, "--cmdline",
                     "tests=sleep sleep.ms=15000"},
                    o);
  EXPECT_EQ(r.status, 128 + SIGKILL) << describe(r);
  EXPECT_TRUE(waitGone(share)) << "virtiofsd outlived a killed ember";
  EXPECT_EQ(socketDirs(), before);
}

TEST_F(Fs, ABackendKilledMidRunIsOneWarningAndTheVmGoesOn) {
  bool killed = false;
  ProcessOptions o;
  o.timeout_ms = 30000;
  o.on_tick = [&](pid_t, const std::string& out) {
    if (!killed && out.find("sleep") != std::string::npos) {
      for (int pid : virtiofsdFor(share)) ::kill(pid, SIGKILL);
      killed = true;
    }
  };
  auto r = runEmber(
      {"run", "--kernel", EMBER_TESTGUEST, "--fs", share, "--cmdline", "tests=sleep sleep.ms=2000"},
      o);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_TRUE(killed);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("went away"), std::string::npos) << describe(r);
}

TEST(Hostile, Case39_FsWithoutVirtiofsd) {
  ::setenv("EMBER_VIRTIOFSD", "/nonexistent/virtiofsd", 1);
  auto r = runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", "/tmp"});
  ::unsetenv("EMBER_VIRTIOFSD");
  expectOneErrorLine(r, "virtiofsd is not at /nonexistent/virtiofsd");
}

TEST(Hostile, Case39_FsDirectoryThatIsNotOne) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs", "/nonexistent-dir"}),
                     "not a directory ember can read");
}

TEST(Hostile, Case39_FsSocketNobodyListensOn) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--fs",
                               "socket=/nonexistent-dir/fs.sock,tag=x"}),
                     "cannot connect to /nonexistent-dir/fs.sock");
}

}  // namespace
}  // namespace ember::test
