// The machine a snapshot was taken of (issue 13): what a restore needs to build the same machine
// again before it puts the state back. Memory, vCPUs, every device the guest sees in the order
// it was added (disks, console and its ports, rng, network interfaces, balloon, pvpanic) with
// the settings the guest can tell (a disk's read-only bit and serial, a NIC's MAC, the queue
// counts), and the host settings that go with them (image paths, tap names, kick paths).
//
// What only the host sees comes from the restoring command line instead: the log level, where
// the serial console writes, the run record, --timeout. A --disk or --net there replaces the
// saved disks' images or NICs' taps, in order (Firecracker's network_overrides); everything the
// guest can tell stays the saved one's.
//
// decode() reads untrusted bytes (a tampered snapshot): strings and counts are bounded, and the
// values are checked again where the machine is built (memory size, vCPU count), as a command
// line's would be.
#pragma once

#include <span>
#include <vector>

#include "kvm/Result.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"
#include "vmm/MachineConfig.h"

namespace ember::vmm {

struct SavedConfig {
  // Refused for what a snapshot cannot hold: a virtio-fs device (its state is virtiofsd's).
  static Result<void> check(const MachineConfig& config);
  static void encode(const MachineConfig& config, StateWriter& w);
  static MachineConfig decode(StateReader& r);
  // SAVED, with the host-side settings and the overrides of HOST (the restoring command line's
  // or API's configuration).
  static Result<MachineConfig> merge(const MachineConfig& saved, const MachineConfig& host);
};

}  // namespace ember::vmm
