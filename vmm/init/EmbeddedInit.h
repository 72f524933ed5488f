// EmbeddedInit: the guest init program (target ember_init, vmm/init/Init.cpp), built as a
// static x86-64 executable and compiled into ember itself, so that ember stays one binary that
// can write an `ember exec` initramfs on any machine.
#pragma once

#include <cstdint>
#include <span>

namespace ember::init {

// The bytes of the ember_init executable this ember was built with.
std::span<const uint8_t> embeddedInit();

}  // namespace ember::init
