// The run record: one JSON object that `ember run --report FILE` writes when ember exits, so that
// harnesses and benchmarks read what happened instead of scraping the log. It holds how the run
// ended (reason, status, and the reason's details), how long the guest ran, every vCPU's exits
// by kind, and every virtio device's identity, interface, kicks, interrupts and counters.
// README.md ("The run record") documents the fields.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "devices/VmControl.h"
#include "kvm/Result.h"
#include "kvm/UniqueFd.h"
#include "virtio/VirtioDevice.h"
#include "virtio/VirtioPciTransport.h"
#include "vmm/VcpuThread.h"

namespace ember::vmm {

struct VcpuRecord {
  uint32_t id = 0;
  VcpuExitCounts exits{};
  ExitSites sites;
};

struct DeviceRecord {
  std::string id;    // blk0, net0, rng0, console0, balloon0: per type, in command-line order
  std::string pci;   // bus:device.function, e.g. 00:01.0
  std::string type;  // virtio-blk, virtio-net, ...
  std::string name;  // what the log calls it, e.g. "virtio-blk disk.img"
  bool ioeventfd = true;
  virtio::TransportCounters transport;
  virtio::DeviceCounters device;
};

struct RunRecord {
  devices::ExitRequest exit;
  double run_time_s = 0;  // from the vCPUs' start to the exit decision
  std::vector<VcpuRecord> vcpus;
  std::vector<DeviceRecord> devices;
  // The event loop's rounds: how many found their work while polling, how many slept in epoll.
  uint64_t loop_polled = 0, loop_slept = 0;
};

// The record as one line of JSON.
std::string formatRunRecord(const RunRecord& record);
// GET /ember/counters: the counters of a record taken while the VM runs (Machine::liveRecord),
// the run record's fields without "exit" and without the vCPUs' exit sites.
std::string formatLiveCounters(const RunRecord& record);

// The --report file: opened (created or truncated) at start-up, so that a path that cannot be
// written fails before the guest runs, and written once when ember exits.
class RunReportFile {
 public:
  static Result<RunReportFile> create(const std::string& path);
  Result<void> write(const RunRecord& record);

 private:
  RunReportFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

}  // namespace ember::vmm
