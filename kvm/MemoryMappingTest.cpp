// MemoryMapping::anonymous: guest RAM of 2 MiB or more starts at a 2 MiB boundary (so that KVM
// can map the host's transparent huge pages as 2 MiB guest pages), with nothing of the larger
// reservation left mapped around it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "kvm/MemoryMapping.h"

namespace ember {
namespace {

// The process's address space, in KiB (VmSize in /proc/self/status).
long vmSizeKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmSize:", 0) == 0) {
      return std::stol(line.substr(7));
    }
  }
  return -1;
}

TEST(MemoryMapping, GuestRamOfTwoMibOrMoreStartsAtATwoMibBoundary) {
  const size_t page = static_cast<size_t>(::getpagesize());
  for (size_t size : {MemoryMapping::kHugePage, size_t{64} << 20, (size_t{3} << 20) + page}) {
    std::vector<MemoryMapping> keep;  // several at once: not every address is a lucky one
    long before = vmSizeKib();
    for (int i = 0; i < 4; ++i) {
      auto m = MemoryMapping::anonymous(size);
      ASSERT_TRUE(m.ok()) << m.error().message;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % MemoryMapping::kHugePage, 0u) << size;
      EXPECT_EQ(m->size(), size);
      m->data()[0] = 1;
      m->data()[size - 1] = 2;
      keep.push_back(std::move(*m));
    }
    // The 2 MiB more that each reservation took are unmapped again: the address space grew by
    // the four mappings and not by 8 MiB more (the vector's own allocation is small).
    long grown = vmSizeKib() - before;
    EXPECT_GE(grown, static_cast<long>(4 * size / 1024)) << size;
    EXPECT_LT(grown, static_cast<long>(4 * size / 1024 + 1024)) << size;
  }
}

TEST(MemoryMapping, SmallMappingsAreNotPadded) {
  auto m = MemoryMapping::anonymous(64 << 10);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), size_t{64} << 10);
  m->data()[0] = 1;
}

}  // namespace
}  // namespace ember
