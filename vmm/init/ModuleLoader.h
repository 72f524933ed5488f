// ModuleLoader: loading a kernel module file with finit_module(2).
//
// The initramfs carries the modules the guest kernel needs for ember exec (virtio-pci,
// virtio_console, virtiofs, overlay, ... as the host found them for that kernel); the job lists
// them in dependency order, since there is no modprobe in the guest to work the order out.
#pragma once

#include <string>
#include <string_view>

#include "vmm/init/InitError.h"

namespace ember::init {

// finit_module(2)'s flags for the file: MODULE_INIT_COMPRESSED_FILE for .xz, .zst and .gz (the
// kernel decompresses it itself, CONFIG_MODULE_DECOMPRESS, Linux 5.17+), else 0.
unsigned moduleInitFlags(std::string_view path);

// Loads the module; one already loaded (EEXIST) is fine. The error names the file, and for the
// errors that have a usual cause, says it.
InitResult<void> loadModule(const std::string& path);

}  // namespace ember::init
