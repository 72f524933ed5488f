// PortDiscovery: finding the job's virtio-console ports by name, without udev.
//
// Linux's virtio_console driver registers each port as a character device /dev/vportNpM (N the
// device, M the port) and, once the host has sent the port's name (VIRTIO_CONSOLE_PORT_NAME,
// virtio spec 1.2, 5.3.6.2), adds the attribute /sys/class/virtio-ports/vportNpM/name holding it
// (drivers/char/virtio_console.c). A name therefore appears some time after the module loads,
// so the init polls for it, bounded. udev would then link /dev/virtio-ports/NAME to the node;
// the init makes those links itself.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "vmm/init/InitError.h"

namespace ember::init {

// Port name -> device node name (e.g. "status" -> "vport0p2").
using PortMap = std::map<std::string, std::string>;

// The named ports under SYSFS_ROOT/class/virtio-ports, read once; ports without a name yet are
// left out. A missing class directory (the driver not loaded yet) is no port at all.
PortMap scanNamedPorts(const std::string& sysfs_root);

// Polls every `interval` until each of `names` is a named port whose node DEV_ROOT/vportNpM
// exists, or `timeout` passes; the error lists the ports still missing and the ones seen.
InitResult<PortMap> waitForPorts(const std::string& sysfs_root, const std::string& dev_root,
                                 const std::vector<std::string>& names,
                                 std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds interval);

// Creates DEV_ROOT/virtio-ports/NAME -> ../vportNpM for each port, the links systemd-udev's
// 50-udev-default.rules makes (SYMLINK+="virtio-ports/$attr{name}"). An existing link is
// replaced.
InitResult<void> linkPorts(const std::string& dev_root, const PortMap& ports);

}  // namespace ember::init
