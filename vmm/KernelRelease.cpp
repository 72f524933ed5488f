// Reading the release from a bzImage's kernel_version string (boot.rst) and finding its modules.
#include "vmm/KernelRelease.h"

#include <sys/stat.h>

#include <algorithm>

#include "kvm/LittleEndian.h"
#include "vmm/BzImage.h"
#include "vmm/ElfLoader.h"

namespace ember::vmm {

namespace {

constexpr uint64_t kKernelVersionOffset =
    kSetupHeaderOffset + offsetof(SetupHeader, kernel_version);
constexpr uint64_t kVersionOffset = kSetupHeaderOffset + offsetof(SetupHeader, version);
// boot.rst: kernel_version is a pointer less 0x200 (the setup code's load offset in its segment).
constexpr uint64_t kKernelVersionBase = 0x200;
constexpr uint16_t kKernelVersionProtocol = 0x0200;

// What a release may contain: Linux's own are letters, digits and ".-_+~" ("6.1.0-50-cloud-amd64",
// "6.8.0-rc3+", "5.15.0-1034-azure"). No '/', so it stays one component of a path.
bool isReleaseChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_' || c == '+' || c == '~';
}

bool isRelease(std::string_view s) {
  return !s.empty() && s.size() <= kMaxKernelRelease &&
         std::all_of(s.begin(), s.end(), isReleaseChar) && s != "." && s != "..";
}

}  // namespace

Result<std::string> kernelRelease(std::span<const uint8_t> image) {
  if (looksLikeElf(image)) {
    return makeError(Errc::Unsupported,
                     "the kernel is an ELF image (vmlinux), whose release cannot be read; give "
                     "--modules DIR");
  }
  if (!looksLikeBzImage(image) || image.size() < kKernelVersionOffset + 2) {
    return makeError(Errc::Unsupported,
                     "the kernel is not a bzImage, so its release cannot be read; give --modules "
                     "DIR");
  }
  uint16_t protocol = loadLe<uint16_t>(image.subspan(kVersionOffset, 2));
  uint16_t pointer = loadLe<uint16_t>(image.subspan(kKernelVersionOffset, 2));
  if (protocol < kKernelVersionProtocol || pointer == 0) {
    return makeError(Errc::Unsupported,
                     "the bzImage has no kernel_version string, so its release cannot be read; "
                     "give --modules DIR");
  }
  // boot.rst: the string lies in the setup code, (setup_sects + 1) * 512 bytes (0 sectors
  // meaning 4), so it is read no further than that and the file's end.
  uint8_t sects = image[kSetupHeaderOffset];
  uint64_t setup_size =
      (uint64_t{sects == 0 ? bzimage::kDefaultSetupSects : sects} + 1) * bzimage::kSectorSize;
  uint64_t end = std::min<uint64_t>(setup_size, image.size());
  uint64_t start = uint64_t{pointer} + kKernelVersionBase;
  if (start >= end) {
    return makeError(Errc::Format,
                     "bzImage kernel_version points at {:#x}, outside its {:#x}-byte setup code",
                     start, end);
  }
  auto text = image.subspan(start, end - start);
  auto nul = std::find(text.begin(), text.end(), uint8_t{0});
  if (nul == text.end()) {
    return makeError(Errc::Format, "bzImage kernel_version string at {:#x} has no NUL", start);
  }
  auto word_end = std::find(text.begin(), nul, uint8_t{' '});
  std::string release(text.begin(), word_end);
  if (!isRelease(release)) {
    return makeError(Errc::Format,
                     "bzImage kernel_version string at {:#x} does not begin with a kernel "
                     "release (letters, digits, \".-_+~\"); give --modules DIR",
                     start);
  }
  return release;
}

Result<std::string> defaultModulesDir(std::string_view release, std::string_view modules_root) {
  if (!isRelease(release)) {
    return makeError(Errc::InvalidArgument,
                     "{:?} is not a kernel release (letters, digits, \".-_+~\")", release);
  }
  std::string dir = fmt::format("{}/{}", modules_root, release);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return makeError(Errc::NotFound,
                     "no modules directory {} for kernel {} on this host; give --modules DIR", dir,
                     release);
  }
  return dir;
}

}  // namespace ember::vmm
