// MountPlan: the initramfs's mounts, the new root's, and the new root's system mounts and shares.
#include "vmm/init/MountPlan.h"

#include <sys/mount.h>

namespace ember::init {
namespace {

// The kernel's own filesystems never need set-uid programs or device nodes (but /dev's).
constexpr unsigned long kKernelFsFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

MountStep mountStep(std::string source, std::string target, std::string fstype, unsigned long flags,
                    std::string data = {}) {
  return MountStep{
      MountStep::Kind::Mount, std::move(source), std::move(target), std::move(fstype), flags,
      std::move(data)};
}

MountStep makeDirectory(std::string path) {
  return MountStep{MountStep::Kind::MakeDirectory, {}, std::move(path), {}, 0, {}};
}

// virtio-fs is mounted by tag: mount -t virtiofs TAG DIR (Documentation/filesystems/virtiofs.rst).
MountStep virtioFs(const std::string& tag, std::string target, Access access) {
  return mountStep(tag, std::move(target), "virtiofs", access == Access::ReadOnly ? MS_RDONLY : 0);
}

}  // namespace

std::string MountStep::describe() const {
  if (kind == Kind::MakeDirectory) {
    return "directory " + target;
  }
  std::string what = fstype == "virtiofs" ? "virtio-fs tag \"" + source + "\"" : fstype;
  if ((flags & MS_RDONLY) != 0) {
    what += " (read-only)";
  }
  return what + " on " + target;
}

MountPlan earlyMounts() {
  return {
      mountStep("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"),
      mountStep("proc", "/proc", "proc", kKernelFsFlags),
      mountStep("sysfs", "/sys", "sysfs", kKernelFsFlags),
  };
}

MountPlan rootMounts(const ExecJob& job) {
  if (job.root_access == Access::ReadWrite) {
    return {virtioFs(job.root_tag, kNewRoot, Access::ReadWrite)};
  }
  // Documentation/filesystems/overlayfs.rst: the upper and work directories must be on the same
  // filesystem; the lower layer may be read-only.
  std::string layers = kOverlayDir;
  return {
      mountStep("tmpfs", layers, "tmpfs", 0, "mode=0755"),
      makeDirectory(layers + "/upper"),
      makeDirectory(layers + "/work"),
      virtioFs(job.root_tag, layers + "/lower", Access::ReadOnly),
      mountStep("overlay", kNewRoot, "overlay", 0,
                "lowerdir=" + layers + "/lower,upperdir=" + layers + "/upper,workdir=" + layers +
                    "/work"),
  };
}

namespace {
bool within(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}
}  // namespace

MountPlan systemMounts(const ExecJob& job) {
  MountPlan plan = {
      mountStep("proc", "/proc", "proc", kKernelFsFlags),
      mountStep("sysfs", "/sys", "sysfs", kKernelFsFlags),
      // The same devtmpfs instance as the initramfs's /dev, with the virtio-ports links in it.
      mountStep("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"),
      // Debian's defaults: group tty (5) owns the terminals; the ptmx node is everyone's.
      mountStep("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                "gid=5,mode=0620,ptmxmode=0666"),
      mountStep("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"),
  };
  if (!within(job.cwd, "/tmp")) {
    plan.push_back(mountStep("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  }
  // The host's /run (its sockets, pid files and locks) means nothing in the guest.
  if (!within(job.cwd, "/run")) {
    plan.push_back(mountStep("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  }
  for (const ExecShare& share : job.shares) {
    plan.push_back(virtioFs(share.tag, share.guest_path, share.access));
  }
  return plan;
}

}  // namespace ember::init
