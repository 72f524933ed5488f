// Everything `ember run` was asked to do, validated and typed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember::vmm {

struct DiskConfig {
  std::string path;
  bool read_only = false;
  std::string serial;
  bool ioeventfd = true;
};

enum class ConsoleKind { Serial, Virtio };

struct MachineConfig {
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  uint64_t memory = 256ULL << 20;
  uint32_t cpus = 1;
  std::string kvm_device = "/dev/kvm";
  std::string log_level = "info";
  std::vector<DiskConfig> disks;
  ConsoleKind console = ConsoleKind::Serial;
  bool rng = false;
};

}  // namespace ember::vmm
