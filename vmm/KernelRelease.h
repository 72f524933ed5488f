// A kernel's release string (`uname -r`, e.g. "6.1.0-50-cloud-amd64"), read from a bzImage, and
// the host modules directory that belongs to it.
//
// x86 boot protocol (Documentation/arch/x86/boot.rst), kernel_version at 0x20e (protocol
// 2.00+): a nonzero value is a pointer, less 0x200, to a NUL-terminated human-readable version
// string inside the real-mode setup code, so the string is at file offset kernel_version + 0x200.
// Linux writes UTS_RELEASE, a space, and the build's banner there; the release is the first
// word. The image is untrusted: every offset is checked against the setup code and the file,
// and the release must be one path component (it becomes /lib/modules/<release>).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "kvm/Result.h"

namespace ember::vmm {

// The longest release accepted; Linux's UTS field holds 64 bytes with the NUL.
constexpr size_t kMaxKernelRelease = 64;

// The release of the bzImage in `image`. An ELF vmlinux (or anything not a bzImage) carries no
// version where a loader can find it: the error says so and asks for --modules.
Result<std::string> kernelRelease(std::span<const uint8_t> image);

// `modules_root`/`release` (by default /lib/modules/<release>) when that directory exists.
Result<std::string> defaultModulesDir(std::string_view release,
                                      std::string_view modules_root = "/lib/modules");

}  // namespace ember::vmm
