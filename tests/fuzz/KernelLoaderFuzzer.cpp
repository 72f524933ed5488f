// Fuzzes the kernel loaders: the input is a kernel image, parsed as ELF (PVH or 64-bit) and as a
// bzImage and, when it parses, loaded into 64 MiB of guest RAM with a command line and initrd;
// its release is read from the bzImage's kernel_version string. Properties: no crash, no access
// outside the input or guest RAM (ASan), and a release that is one path component.
#include <cstdlib>
#include <string>

#include "FuzzInput.h"
#include "kvm/GuestMemory.h"
#include "vmm/BzImage.h"
#include "vmm/ElfLoader.h"
#include "vmm/KernelRelease.h"
#include "vmm/MemoryLayout.h"

using namespace ember;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* layout =
      new vmm::MemoryLayout(std::move(vmm::MemoryLayout::forSize(64 << 20)).value());
  static GuestMemory* mem =
      new GuestMemory(std::move(GuestMemory::create(layout->ramRegions())).value());
  std::span<const uint8_t> file(data, size);
  if (vmm::looksLikeElf(file)) {
    auto image = vmm::parseElf(file);
    if (image) (void)vmm::loadElf(*image, file, *mem, vmm::layout::kHighMemoryStart);
  }
  if (vmm::looksLikeBzImage(file)) {
    auto image = vmm::parseBzImage(file);
    if (image) {
      static const uint8_t initrd[4096] = {1, 2, 3};
      (void)vmm::loadBzImage(*image, file, *mem, *layout,
                             {"console=ttyS0 root=/dev/vda", initrd, 0xe0000});
    }
  }
  if (auto release = vmm::kernelRelease(file); release.ok()) {
    if (release->empty() || release->size() > vmm::kMaxKernelRelease ||
        release->find('/') != std::string::npos || *release == "." || *release == "..") {
      abort();
    }
  }
  return 0;
}
