// MountExecutor: the plans carried out for real, in a child process with a mount namespace of
// its own (root only): the overlay root over a read-only lower layer, the switch of root, and
// the system mounts with the options the plan gives; and, anywhere, a failing step stopping the
// plan with an error naming it. Only virtio-fs itself, which needs the guest's device, is
// replaced (by a tmpfs as the overlay's lower layer).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "vmm/init/FileOps.h"
#include "vmm/init/MountExecutor.h"
#include "vmm/init/testing/TempDir.h"

namespace ember::init {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

bool kernelHasFilesystems(std::initializer_list<const char*> names) {
  std::ifstream in("/proc/filesystems");
  std::stringstream text;
  text << in.rdbuf();
  for (const char* name : names) {
    if (text.str().find(std::string("\t") + name + "\n") == std::string::npos) {
      return false;
    }
  }
  return true;
}

// Runs `body` in a forked child that has its own mount namespace (every mount private, so
// nothing reaches the host's) and returns what it returned: empty for success, else what went
// wrong.
std::string inMountNamespace(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return "pipe2 failed";
  }
  OwnedFd read_end(fds[0]);
  OwnedFd write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string failure;
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
      failure = InitError::fromErrno("a private mount namespace").message;
    } else {
      failure = body();
    }
    (void)writeAll(write_end.get(), failure);
    ::_exit(failure.empty() ? 0 : 1);
  }
  write_end = OwnedFd();
  InitResult<std::string> report = readAll(read_end.get(), 1 << 20);
  std::string failure = report.ok() ? report.value() : report.error().message;
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (failure.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    return "the child died with wait status " + std::to_string(status);
  }
  return failure;
}

std::string check(bool ok, const std::string& what) {
  return ok ? "" : what;
}

std::string failureOf(const InitResult<void>& done) {
  return done.ok() ? "" : done.error().message;
}

// Makes a fresh tmpfs on DIR/scratch the root, so that the plans' absolute paths (/ember/...)
// are made in it and not on the host's disk.
std::string enterScratchRoot(const TempDir& dir) {
  std::string scratch = dir.file("scratch");
  MountPlan plan = {{MountStep::Kind::Mount, "tmpfs", scratch, "tmpfs", 0, ""}};
  std::string failure = failureOf(performMounts(plan, ConsoleLog()));
  return failure.empty() ? failureOf(switchRoot(scratch)) : failure;
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode : 0;
}

// The read-only root as the init assembles it, on a tmpfs standing in for virtio-fs.
MountPlan rootWithTmpfsLower() {
  ExecJob job;
  job.root_tag = "hostroot";
  job.root_access = Access::ReadOnly;
  MountPlan plan = rootMounts(job);
  for (MountStep& step : plan) {
    if (step.fstype == "virtiofs") {
      step.source = "tmpfs";
      step.fstype = "tmpfs";
    }
  }
  return plan;
}

TEST(MountExecutor, MakesTheDirectoriesOfAPlan) {
  TempDir dir;
  MountPlan plan = {{MountStep::Kind::MakeDirectory, "", dir.file("a/b"), "", 0, ""},
                    {MountStep::Kind::MakeDirectory, "", dir.file("c"), "", 0, ""}};
  ASSERT_TRUE(performMounts(plan, ConsoleLog()).ok());
  EXPECT_TRUE(S_ISDIR(modeOf(dir.file("a/b"))));
  EXPECT_TRUE(S_ISDIR(modeOf(dir.file("c"))));
}

TEST(MountExecutor, AFailingMountStopsThePlanAndNamesFilesystemDirectoryAndErrno) {
  TempDir dir;
  MountPlan plan = {
      {MountStep::Kind::MakeDirectory, "", dir.file("first"), "", 0, ""},
      {MountStep::Kind::Mount, "tag0", dir.file("share"), "ember-no-such-fs", MS_RDONLY, ""},
      {MountStep::Kind::MakeDirectory, "", dir.file("never"), "", 0, ""}};
  InitResult<void> done = performMounts(plan, ConsoleLog());
  ASSERT_FALSE(done.ok());
  // No such device as root, Operation not permitted otherwise.
  EXPECT_THAT(done.error().message,
              HasSubstr("mounting ember-no-such-fs (read-only) on " + dir.file("share") + ": "));
  if (::geteuid() == 0) {
    EXPECT_EQ(done.error().message,
              "mounting ember-no-such-fs (read-only) on " + dir.file("share") +
                  ": No such device (no ember-no-such-fs filesystem in this kernel: built in, or a "
                  "module of the job?)");
  }
  EXPECT_TRUE(S_ISDIR(modeOf(dir.file("first"))));
  EXPECT_EQ(modeOf(dir.file("never")), 0u);
}

TEST(MountExecutor, AMissingVirtioFsTagSaysSo) {
  if (::geteuid() != 0 || !kernelHasFilesystems({"virtiofs"})) {
    GTEST_SKIP() << "needs root and virtiofs in the host kernel";
  }
  TempDir dir;
  MountPlan plan = {
      {MountStep::Kind::Mount, "ember-no-such-tag", dir.file("m"), "virtiofs", 0, ""}};
  InitResult<void> done = performMounts(plan, ConsoleLog());
  ASSERT_FALSE(done.ok());
  EXPECT_THAT(done.error().message, HasSubstr("(no virtio-fs device has this tag?)"));
}

TEST(MountExecutor, AssemblesAnOverlayRootSwitchesIntoItAndMountsTheSystemFilesystems) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting needs root";
  }
  if (!kernelHasFilesystems({"tmpfs", "overlay", "proc", "sysfs", "devtmpfs", "devpts"})) {
    GTEST_SKIP() << "the host kernel lacks one of tmpfs, overlay, proc, sysfs, devtmpfs, devpts";
  }
  TempDir dir;
  std::string failure = inMountNamespace([&]() -> std::string {
    if (std::string e = enterScratchRoot(dir); !e.empty()) {
      return e;
    }
    if (std::string e = failureOf(performMounts(rootWithTmpfsLower(), ConsoleLog())); !e.empty()) {
      return e;
    }
    // The lower layer is read-only; writes through the overlay land in the upper directory.
    if (::mkdir(std::string(kNewRoot).append("/written").c_str(), 0755) != 0) {
      return InitError::fromErrno("writing through the overlay").message;
    }
    if (std::string e = check(S_ISDIR(modeOf(std::string(kOverlayDir) + "/upper/written")),
                              "the write is not in the upper layer");
        !e.empty()) {
      return e;
    }
    if (::mkdir(std::string(kOverlayDir).append("/lower/x").c_str(), 0755) == 0 || errno != EROFS) {
      return "the lower layer is writable";
    }
    if (std::string e = failureOf(switchRoot(kNewRoot)); !e.empty()) {
      return e;
    }
    if (std::string e = check(S_ISDIR(modeOf("/written")), "/ is not the overlay"); !e.empty()) {
      return e;
    }
    if (std::string e = failureOf(performMounts(systemMounts(ExecJob()), ConsoleLog()));
        !e.empty()) {
      return e;
    }
    std::string problems;
    problems += check(modeOf("/proc/self/stat") != 0, "no /proc/self/stat; ");
    problems += check(S_ISDIR(modeOf("/sys/class")), "no /sys/class; ");
    problems += check(S_ISCHR(modeOf("/dev/null")), "no /dev/null; ");
    problems += check(S_ISCHR(modeOf("/dev/pts/ptmx")), "no /dev/pts/ptmx; ");
    problems += check((modeOf("/tmp") & 07777) == 01777, "/tmp is not 1777; ");
    problems += check((modeOf("/dev/shm") & 07777) == 01777, "/dev/shm is not 1777; ");
    problems += check((modeOf("/run") & 07777) == 0755, "/run is not 0755; ");
    return problems;
  });
  EXPECT_EQ(failure, "");
}

TEST(MountExecutor, TheReadWriteRootIsMountedDirectly) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting needs root";
  }
  TempDir dir;
  std::string failure = inMountNamespace([&]() -> std::string {
    if (std::string e = enterScratchRoot(dir); !e.empty()) {
      return e;
    }
    ExecJob job;
    job.root_tag = "hostroot";
    job.root_access = Access::ReadWrite;
    MountPlan plan = rootMounts(job);
    plan[0].source = plan[0].fstype = "tmpfs";  // in place of virtio-fs
    if (std::string e = failureOf(performMounts(plan, ConsoleLog())); !e.empty()) {
      return e;
    }
    if (::mkdir(std::string(kNewRoot).append("/w").c_str(), 0755) != 0) {
      return InitError::fromErrno("writing to the read-write root").message;
    }
    return check(modeOf(kOverlayDir) == 0, "an overlay was made for a read-write root");
  });
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace ember::init
