// Fuzzes the kernel loaders: the input is a kernel image, parsed as ELF (PVH or 64-bit) and as a
// bzImage and, when it parses, loaded into 64 MiB of guest RAM with a command line and initrd.
// Properties: no crash, no write outside guest RAM (ASan).
#include "FuzzInput.h"
#include "kvm/GuestMemory.h"
#include "vmm/BzImage.h"
#include "vmm/ElfLoader.h"
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
  return 0;
}
