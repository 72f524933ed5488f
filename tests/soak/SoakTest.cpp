// Soak: 200 back-to-back boots of the test guest with a disk, each a full Machine built, run and
// destroyed inside this one test process. Afterwards the process must hold no more file
// descriptors or threads than before, and its memory must not have grown with the boot count
// (all counted from /proc/self). It runs in the release build, where VmRSS is the process's own;
// under ASan the allocator's quarantine holds freed blocks (hundreds of MiB by design), so there
// VmRSS says nothing about leaks and LeakSanitizer checks the heap at exit instead.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "kvm/Log.h"
#include "vmm/Machine.h"

namespace ember {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

int countFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the directory stream itself
}

long statusField(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

int bootOnce(const std::string& disk) {
  vmm::MachineConfig cfg;
  cfg.kernel = EMBER_TESTGUEST;
  cfg.memory = 64ULL << 20;
  cfg.cmdline = "tests=virtio-blk-getid blk.serial=soak";
  cfg.disks.push_back(vmm::DiskConfig{disk, false, "soak", true});
  auto machine = vmm::Machine::create(cfg);
  if (!machine) {
    ADD_FAILURE() << machine.error().message;
    return -1;
  }
  return (*machine)->run().exit.status;
}

TEST(Soak, TwoHundredBootsLeakNothing) {
  log::setLevel(log::Level::Warn);
  char path[] = "/tmp/ember-soak-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1 << 20), 0);
  close(fd);
  // The guest console goes to stdout; keep the test log readable.
  std::fflush(stdout);
  int saved_stdout = dup(STDOUT_FILENO);
  int devnull = open("/dev/null", O_WRONLY);
  dup2(devnull, STDOUT_FILENO);
  close(devnull);

  constexpr int kWarmup = 10, kBoots = 200;
  for (int i = 0; i < kWarmup; ++i) ASSERT_EQ(bootOnce(path), 0);
  int fds = countFds();
  long threads = statusField("Threads");
  long rss = statusField("VmRSS");
  for (int i = 0; i < kBoots; ++i) {
    int status = bootOnce(path);
    ASSERT_EQ(status, 0) << "boot " << i;
  }
  int fds_after = countFds();
  long threads_after = statusField("Threads");
  long rss_after = statusField("VmRSS");

  std::fflush(stdout);
  dup2(saved_stdout, STDOUT_FILENO);
  close(saved_stdout);
  unlink(path);
  EXPECT_EQ(fds_after, fds) << "file descriptors leaked over " << kBoots << " boots";
  EXPECT_EQ(threads_after, threads) << "threads leaked over " << kBoots << " boots";
  // A per-boot leak of even one guest page table or kvm_run mapping would show as >1 MiB here.
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(rss_after - rss, 1024) << "RSS grew from " << rss << " kB to " << rss_after << " kB";
  }
  std::printf("soak: %d boots; fds %d -> %d, threads %ld -> %ld, VmRSS %ld -> %ld kB\n", kBoots,
              fds, fds_after, threads, threads_after, rss, rss_after);
}

}  // namespace
}  // namespace ember
