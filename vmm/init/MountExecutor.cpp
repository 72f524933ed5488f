// MountExecutor: mkdir -p and mount(2) per step; switch_root's move-and-chroot.
#include "vmm/init/MountExecutor.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

#include "vmm/init/FileOps.h"

namespace ember::init {
namespace {

// The usual cause of the errors a mount in the guest meets.
std::string hint(const MountStep& step, int err) {
  if (err == ENODEV) {
    return " (no " + step.fstype + " filesystem in this kernel: built in, or a module of the job?)";
  }
  if (err == EINVAL && step.fstype == "virtiofs") {
    // virtio_fs_get_tree(): "virtio-fs: tag <%s> not found", -EINVAL.
    return " (no virtio-fs device has this tag?)";
  }
  return {};
}

}  // namespace

InitResult<void> performMounts(const MountPlan& plan, const ConsoleLog& log) {
  for (const MountStep& step : plan) {
    log.step((step.kind == MountStep::Kind::Mount ? "mounting " : "creating ") + step.describe());
    if (InitResult<void> made = makeDirectories(step.target); !made.ok()) {
      return InitError{"mounting " + step.describe() + ": " + made.error().message};
    }
    if (step.kind != MountStep::Kind::Mount) {
      continue;
    }
    if (::mount(step.source.c_str(), step.target.c_str(), step.fstype.c_str(), step.flags,
                step.data.empty() ? nullptr : step.data.c_str()) != 0) {
      int err = errno;
      InitError error = InitError::fromErrno("mounting " + step.describe(), err);
      error.message += hint(step, err);
      return error;
    }
  }
  return {};
}

InitResult<void> switchRoot(const std::string& new_root) {
  // util-linux sys-utils/switch_root.c: chdir(newroot), mount(newroot, "/", MS_MOVE),
  // chroot("."), chdir("/").
  if (::chdir(new_root.c_str()) != 0) {
    return InitError::fromErrno("switching root: chdir " + new_root);
  }
  if (::mount(new_root.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0) {
    return InitError::fromErrno("switching root: moving " + new_root + " onto /");
  }
  if (::chroot(".") != 0) {
    return InitError::fromErrno("switching root: chroot " + new_root);
  }
  if (::chdir("/") != 0) {
    return InitError::fromErrno("switching root: chdir /");
  }
  return {};
}

}  // namespace ember::init
