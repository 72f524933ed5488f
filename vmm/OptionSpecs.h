// The option values that are small languages of their own: sizes ("512M") and the device
// specifications of --disk, --net, --serial-port and --fs. Each returns one error line naming
// the option and what was wrong.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/Result.h"
#include "vmm/ExecRequest.h"
#include "vmm/MachineConfig.h"

namespace ember::vmm {

// "PATH[,readonly][,serial=ID][,ioeventfd=on|off][,aio=libaio|io_uring|sync][,num-queues=N]"
// -> DiskConfig.
Result<DiskConfig> parseDiskSpec(const std::string& text);

// "tap=NAME[,mac=52:54:00:12:34:56][,mtu=N][,ioeventfd=on|off]" -> NetConfig.
Result<NetConfig> parseNetSpec(const std::string& text);
// --vsock cid=N: the guest's context ID (VirtioVsock::checkCid).
Result<uint64_t> parseVsockSpec(const std::string& text);

// A unicast MAC address, "52:54:00:12:34:56" (errors say what is wrong with it, without naming
// the option); and back to that form.
Result<std::array<uint8_t, 6>> parseMacAddress(const std::string& text);
std::string formatMacAddress(const std::array<uint8_t, 6>& mac);

// "NAME=stdio", "NAME=file:PATH" or "NAME=socket:PATH" -> SerialPortConfig. NAME: 1 to 64 of
// [A-Za-z0-9._-] (it becomes /dev/virtio-ports/NAME in the guest).
Result<SerialPortConfig> parseSerialPortSpec(const std::string& text);

// "DIR[,tag=T][,readonly]" or "socket=PATH,tag=T" -> FsConfig; `index` names the default tag
// (fs0, fs1, ...).
Result<FsConfig> parseFsSpec(const std::string& text, size_t index);

// ember exec's "HOST[:GUEST[:ro|rw]]" -> ExecShareConfig. GUEST, when given, is absolute; the
// host path is kept as given (the caller resolves it).
Result<ExecShareConfig> parseShareSpec(const std::string& text);

// "256M", "3G", "1024K", "2T" or a plain number of MiB -> bytes.
Result<uint64_t> parseMemorySize(const std::string& text);

}  // namespace ember::vmm
