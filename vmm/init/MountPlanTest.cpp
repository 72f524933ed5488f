// MountPlan: the initramfs mounts, both kinds of root, the system mounts and the shares.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <string>

#include "vmm/init/MountPlan.h"

namespace ember::init {
namespace {

ExecJob jobWithRoot(Access access) {
  ExecJob job;
  job.root_tag = "hostroot";
  job.root_access = access;
  return job;
}

const MountStep* find(const MountPlan& plan, const std::string& target) {
  auto it = std::find_if(plan.begin(), plan.end(),
                         [&](const MountStep& s) { return s.target == target; });
  return it == plan.end() ? nullptr : &*it;
}

size_t position(const MountPlan& plan, const std::string& target) {
  return static_cast<size_t>(std::find_if(plan.begin(), plan.end(),
                                          [&](const MountStep& s) { return s.target == target; }) -
                             plan.begin());
}

TEST(MountPlan, EarlyMountsAreDevProcAndSys) {
  MountPlan plan = earlyMounts();
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0], (MountStep{MountStep::Kind::Mount, "devtmpfs", "/dev", "devtmpfs", MS_NOSUID,
                                "mode=0755"}));
  EXPECT_EQ(plan[1].fstype, "proc");
  EXPECT_EQ(plan[1].target, "/proc");
  EXPECT_EQ(plan[2].fstype, "sysfs");
  EXPECT_EQ(plan[2].target, "/sys");
  EXPECT_EQ(plan[2].flags, unsigned{MS_NOSUID | MS_NODEV | MS_NOEXEC});
}

TEST(MountPlan, ReadOnlyRootIsAnOverlayOverVirtioFsWithUpperAndWorkOnATmpfs) {
  MountPlan plan = rootMounts(jobWithRoot(Access::ReadOnly));
  MountPlan expected = {
      {MountStep::Kind::Mount, "tmpfs", "/ember/overlay", "tmpfs", 0, "mode=0755"},
      {MountStep::Kind::MakeDirectory, "", "/ember/overlay/upper", "", 0, ""},
      {MountStep::Kind::MakeDirectory, "", "/ember/overlay/work", "", 0, ""},
      {MountStep::Kind::Mount, "hostroot", "/ember/overlay/lower", "virtiofs", MS_RDONLY, ""},
      {MountStep::Kind::Mount, "overlay", "/ember/root", "overlay", 0,
       "lowerdir=/ember/overlay/lower,upperdir=/ember/overlay/upper,workdir=/ember/overlay/work"},
  };
  EXPECT_EQ(plan, expected);
}

TEST(MountPlan, ReadWriteRootIsTheVirtioFsMountItself) {
  MountPlan plan = rootMounts(jobWithRoot(Access::ReadWrite));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0], (MountStep{MountStep::Kind::Mount, "hostroot", kNewRoot, "virtiofs", 0, ""}));
}

TEST(MountPlan, SystemMountsGiveTheNewRootKernelFilesystemsAndFreshTmpfs) {
  MountPlan plan = systemMounts(jobWithRoot(Access::ReadOnly));
  for (const char* target : {"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run"}) {
    EXPECT_NE(find(plan, target), nullptr) << target;
  }
  EXPECT_EQ(find(plan, "/proc")->fstype, "proc");
  EXPECT_EQ(find(plan, "/sys")->fstype, "sysfs");
  EXPECT_EQ(find(plan, "/dev")->fstype, "devtmpfs");
  EXPECT_EQ(find(plan, "/dev/pts")->fstype, "devpts");
  EXPECT_EQ(find(plan, "/tmp")->fstype, "tmpfs");
  EXPECT_EQ(find(plan, "/tmp")->data, "mode=1777");
  // Mounted inside /dev, so after it.
  EXPECT_LT(position(plan, "/dev"), position(plan, "/dev/pts"));
  EXPECT_LT(position(plan, "/dev"), position(plan, "/dev/shm"));
}

TEST(MountPlan, AWorkingDirectoryInsideTmpOrRunKeepsTheHostsThroughTheRoot) {
  ExecJob job = jobWithRoot(Access::ReadOnly);
  job.cwd = "/tmp/tmp.x1y2z3";
  MountPlan in_tmp = systemMounts(job);
  EXPECT_EQ(find(in_tmp, "/tmp"), nullptr);
  EXPECT_NE(find(in_tmp, "/run"), nullptr);
  job.cwd = "/run/user/1000";
  EXPECT_EQ(find(systemMounts(job), "/run"), nullptr);
  EXPECT_NE(find(systemMounts(job), "/tmp"), nullptr);
  job.cwd = "/tmpfoo";  // not inside /tmp
  EXPECT_NE(find(systemMounts(job), "/tmp"), nullptr);
}

TEST(MountPlan, SharesFollowTheSystemMountsInJobOrderWithTheirAccess) {
  ExecJob job = jobWithRoot(Access::ReadOnly);
  job.shares = {{"src", "/home/u/src", Access::ReadWrite},
                {"scratch", "/tmp/scratch", Access::ReadOnly},
                {"nested", "/home/u/src/out", Access::ReadWrite}};
  MountPlan plan = systemMounts(job);
  ASSERT_GE(plan.size(), 3u);
  MountPlan shares(plan.end() - 3, plan.end());
  EXPECT_EQ(shares[0],
            (MountStep{MountStep::Kind::Mount, "src", "/home/u/src", "virtiofs", 0, ""}));
  EXPECT_EQ(shares[1], (MountStep{MountStep::Kind::Mount, "scratch", "/tmp/scratch", "virtiofs",
                                  MS_RDONLY, ""}));
  EXPECT_EQ(shares[2].target, "/home/u/src/out");
  // A share under /tmp is mounted on the fresh tmpfs, not hidden by it.
  EXPECT_LT(position(plan, "/tmp"), position(plan, "/tmp/scratch"));
}

TEST(MountPlan, DescribeNamesTheTagOrFilesystemAndTheDirectory) {
  EXPECT_EQ(rootMounts(jobWithRoot(Access::ReadOnly))[3].describe(),
            "virtio-fs tag \"hostroot\" (read-only) on /ember/overlay/lower");
  EXPECT_EQ(rootMounts(jobWithRoot(Access::ReadWrite))[0].describe(),
            "virtio-fs tag \"hostroot\" on /ember/root");
  EXPECT_EQ(earlyMounts()[1].describe(), "proc on /proc");
  EXPECT_EQ(rootMounts(jobWithRoot(Access::ReadOnly))[1].describe(),
            "directory /ember/overlay/upper");
}

}  // namespace
}  // namespace ember::init
