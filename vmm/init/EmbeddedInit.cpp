// EmbeddedInit: the ember_init executable's bytes, included by the assembler.
//
// `.incbin` (GNU as manual, "Directives": .incbin "file") copies the file into this object's
// read-only data; CMake passes its path as EMBER_INIT_PATH and makes the object depend on it,
// so a rebuilt init relinks ember. Top-level asm keeps it in a C++ file, built like every other
// source of ember_vmm: an assembler source would be handed ember_flags' C++ warning, sanitizer
// and fuzzer options too, and need them filtered out per language in every configuration.
#include "vmm/init/EmbeddedInit.h"

#ifndef EMBER_INIT_PATH
#error "EMBER_INIT_PATH (the built ember_init) must be defined by the build"
#endif

// Defined by the asm below; hidden, so that they resolve within ember and never through a GOT.
extern "C" {
__attribute__((visibility("hidden"))) extern const uint8_t ember_init_begin[];
__attribute__((visibility("hidden"))) extern const uint8_t ember_init_end[];
}

asm(".pushsection .rodata.ember_init, \"a\", @progbits\n"
    ".balign 16\n"
    ".globl ember_init_begin\n"
    ".globl ember_init_end\n"
    ".hidden ember_init_begin\n"
    ".hidden ember_init_end\n"
    "ember_init_begin:\n"
    ".incbin \"" EMBER_INIT_PATH
    "\"\n"
    "ember_init_end:\n"
    ".popsection\n");

namespace ember::init {

std::span<const uint8_t> embeddedInit() {
  return {ember_init_begin, static_cast<size_t>(ember_init_end - ember_init_begin)};
}

}  // namespace ember::init
