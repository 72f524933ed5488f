// MountPlan: the mounts the guest init performs, as data.
//
// Three plans, built from the job by pure functions (tested on the host) and carried out by
// MountExecutor, a thin layer of mkdir(2) and mount(2):
//
//   earlyMounts()       devtmpfs, proc and sysfs of the initramfs, which the init needs to
//                       load modules and find the virtio-console ports;
//   rootMounts(job)     the command's root at kNewRoot: for `ro`, the host root's virtio-fs tag
//                       read-only as the lower layer of an overlayfs whose upper and work
//                       directories are on a tmpfs, so that guest writes stay in the guest;
//                       for `rw`, the virtio-fs mount itself;
//   systemMounts(job)   once the root is switched (MountExecutor's switchRoot): proc, sysfs,
//                       devtmpfs, devpts, /dev/shm, /tmp and /run, then each share at its guest
//                       path. A fresh /tmp or /run is left out when the command's working
//                       directory is inside it (a CI job in a `mktemp -d` directory): the guest
//                       then sees the host's, through the root. Done after the switch so that the
//                       paths, and any symlinks in them, resolve inside the new root and never into
//                       the initramfs.
//
// A missing mount point is created (mkdir -p): in the overlay's upper layer for a `ro` root,
// but in the host's own directory for a `rw` one.
#pragma once

#include <string>
#include <vector>

#include "vmm/init/ExecJob.h"

namespace ember::init {

// Where rootMounts() assembles the new root, and the tmpfs holding its overlay layers.
inline constexpr const char* kNewRoot = "/ember/root";
inline constexpr const char* kOverlayDir = "/ember/overlay";

struct MountStep {
  enum class Kind {
    MakeDirectory,  // mkdir -p target
    Mount,          // mkdir -p target, then mount(source, target, fstype, flags, data)
  };
  Kind kind = Kind::Mount;
  std::string source;
  std::string target;
  std::string fstype;
  unsigned long flags = 0;  // MS_* (mount(2))
  std::string data;         // the filesystem's options

  bool operator==(const MountStep&) const = default;

  // For logs and errors: `virtio-fs tag "root" (read-only) on /ember/overlay/lower`.
  std::string describe() const;
};

using MountPlan = std::vector<MountStep>;

MountPlan earlyMounts();
MountPlan rootMounts(const ExecJob& job);
MountPlan systemMounts(const ExecJob& job);

}  // namespace ember::init
