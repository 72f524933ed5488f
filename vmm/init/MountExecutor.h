// MountExecutor: carries out a MountPlan with mkdir(2) and mount(2), and switches the root.
//
// The thin syscall layer under MountPlan; it needs CAP_SYS_ADMIN and a kernel that is the
// guest's, so it runs in the guest only (the plans are what the unit tests check).
#pragma once

#include <string>

#include "vmm/init/ConsoleLog.h"
#include "vmm/init/InitError.h"
#include "vmm/init/MountPlan.h"

namespace ember::init {

// Each step in order; the first failure stops it, its error naming the filesystem (the tag
// for virtio-fs), the directory and the errno's text.
InitResult<void> performMounts(const MountPlan& plan, const ConsoleLog& log);

// Makes `new_root` the root, as switch_root(8) does from an initramfs: pivot_root(2) cannot
// take the initramfs (rootfs) away, so the new root is moved over "/" (mount(2) MS_MOVE) and
// the init chroots into it. The initramfs's files stay in memory (switch_root would delete
// them; ember exec's initramfs is small and the VM short-lived).
InitResult<void> switchRoot(const std::string& new_root);

}  // namespace ember::init
