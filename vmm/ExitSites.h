// Where a vCPU's userspace exits went: how many port I/O exits each port took, and how many MMIO
// exits each 4 KiB page took, for the run record (README.md, "The run record"). This is what says
// which device a boot spent its exits on (the serial port, PCI configuration, an unclaimed port
// the guest probes), beside the exit counts by kind.
//
// The guest chooses the ports and addresses, so the table is bounded: the first kMaxSites
// distinct sites of each space are counted one by one and any further site's exits are added to
// `other`. A guest touching every port or page costs ember a fixed, small amount of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::vmm {

class ExitSites {
 public:
  static constexpr size_t kMaxSites = 64;
  static constexpr uint64_t kMmioPage = 4096;

  struct Site {
    uint64_t address;  // the port, or the MMIO page's first address
    uint64_t exits;
  };

  void countPort(uint16_t port) { count(ports_, port_other_, port); }
  void countMmio(uint64_t addr) { count(mmio_, mmio_other_, addr & ~(kMmioPage - 1)); }

  // In the order each site first exited.
  const std::vector<Site>& ports() const { return ports_; }
  const std::vector<Site>& mmioPages() const { return mmio_; }
  // Exits at sites beyond the first kMaxSites of the space.
  uint64_t portOther() const { return port_other_; }
  uint64_t mmioOther() const { return mmio_other_; }

 private:
  static void count(std::vector<Site>& sites, uint64_t& other, uint64_t address);

  std::vector<Site> ports_;
  std::vector<Site> mmio_;
  uint64_t port_other_ = 0;
  uint64_t mmio_other_ = 0;
};

}  // namespace ember::vmm
