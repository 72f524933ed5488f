// Bounded per-site exit counts (see ExitSites.h).
#include "vmm/ExitSites.h"

namespace ember::vmm {

void ExitSites::count(std::vector<Site>& sites, uint64_t& other, uint64_t address) {
  // A linear search: at most kMaxSites entries, and the few hot sites of a boot (the serial port,
  // 0xcf8/0xcfc) come first. An exit to userspace costs microseconds; this costs nanoseconds.
  for (auto& s : sites) {
    if (s.address == address) {
      ++s.exits;
      return;
    }
  }
  if (sites.size() < kMaxSites) {
    sites.push_back({address, 1});
  } else {
    ++other;
  }
}

}  // namespace ember::vmm
