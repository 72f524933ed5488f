// The initramfs `ember exec` boots: a newc archive (CpioWriter) holding ember's guest init as
// /init, the job it runs as /ember/job (vmm/init/ExecJob.h) and the kernel modules the job loads,
// appended to the user's own initrd when one is given.
//
// Layout in the guest:
//   /init                       the init (vmm/init/Init.cpp), 0755; the command line's rdinit=
//   /ember/job                  the job, 0600
//   /ember/modules/<path>       each module file, as modules.dep spells its path, 0644
//   /dev/console                character device 5:1, which the kernel opens for /init's stdio
//   /dev, /proc, /sys, /tmp     the early mount points
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvm/Result.h"
#include "vmm/KernelModules.h"
#include "vmm/init/ExecJob.h"

namespace ember::vmm {

// Where a module file of the plan is in the guest.
std::string guestModulePath(const ModuleFile& file);

// The archive for `job`, whose module list is set here to the guest paths of `modules` in load
// order (each read from `modules_dir`), and `init` as /init. A job that validate() refuses is an
// error.
Result<std::vector<uint8_t>> buildExecInitramfs(init::ExecJob& job, const std::string& modules_dir,
                                                std::span<const ModuleFile> modules,
                                                std::span<const uint8_t> init);

}  // namespace ember::vmm
