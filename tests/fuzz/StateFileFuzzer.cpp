// StateFile::parse on arbitrary bytes (a snapshot's state file is untrusted input), and every
// section it accepts decoded with StateReader by a script the input also chooses. When the first
// byte is odd, the rest gets a correct checksum first, so that the fuzzer explores the
// structure checks behind it rather than stopping at the CRC. A crash, a read out of bounds or
// an accepted file whose sections do not re-serialize to the same bytes is a finding. Each
// section is also given to the decoders a restore reads it with (the saved machine, the vCPU and
// VM state, a virtio device's driver state), which must refuse or accept it without reading out
// of bounds.
#include <cstdlib>
#include <vector>

#include "kvm/LittleEndian.h"
#include "kvm/StateReader.h"
#include "kvm/VcpuState.h"
#include "kvm/VmState.h"
#include "virtio/DriverState.h"
#include "vmm/snapshot/SavedConfig.h"
#include "vmm/snapshot/StateFile.h"

using ember::StateReader;
using ember::vmm::StateFile;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> bytes(data + 1, data + size);
  if ((data[0] & 1) != 0 && bytes.size() >= StateFile::kChecksumBytes) {
    auto body = std::span(bytes).first(bytes.size() - StateFile::kChecksumBytes);
    ember::storeLe<uint64_t>(std::span(bytes).last(StateFile::kChecksumBytes),
                             StateFile::crc64(body));
  }
  auto file = StateFile::parse(bytes, "fuzz.state");
  if (!file) {
    if (file.error().message.empty() || file.error().message.find('\n') != std::string::npos) {
      abort();  // every refusal is one line
    }
    return 0;
  }
  if (file->serialize() != bytes) abort();
  for (const auto& s : file->sections()) {
    {
      StateReader c(s.bytes, s.name());
      (void)ember::vmm::SavedConfig::decode(c);
      (void)c.finish();
      StateReader v(s.bytes, s.name());
      (void)ember::kvm::VcpuState::decode(v);
      (void)v.finish();
      StateReader m(s.bytes, s.name());
      (void)ember::kvm::VmState::decode(m);
      (void)m.finish();
      const uint16_t sizes[] = {256, 256, 128};  // a device with three queues
      StateReader d(s.bytes, s.name());
      (void)ember::virtio::DriverState::decode(d, sizes);
      (void)d.finish();
    }
    StateReader r(s.bytes, s.name());
    // The script: the section's own bytes, two bits per read, pick what to read next.
    for (size_t step = 0; step < 64 && r.ok() && r.remaining() > 0; ++step) {
      switch ((s.bytes[step % s.bytes.size()] >> (2 * (step % 4))) & 3) {
        case 0:
          (void)r.u32("word");
          break;
        case 1:
          (void)r.boolean("flag");
          break;
        case 2:
          (void)r.blob("blob", 256);
          break;
        default:
          (void)r.string("text", 64);
          break;
      }
    }
    (void)r.finish();
  }
  return 0;
}
