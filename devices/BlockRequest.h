// Parsing of one virtio-blk request chain (virtio 1.2, 5.2.6) into what the backend must do.
//
// Pure: it reads the 16-byte header from guest memory and classifies the chain, so that every
// hostile case can be tested and fuzzed without a disk. The outcome is one of
//   - Reject: the chain is malformed (no header, a writable header, no status byte, a zero-length
//     status descriptor, data in the wrong direction; hostile-guest case 28): it goes back to the
//     used ring with length 0 and no status;
//   - Status: answer at once with a status byte (IOERR for out-of-range or misaligned sectors,
//     writes to a read-only disk, too many or too large segments; UNSUPP for unknown types;
//     cases 27, 29, 30);
//   - Io: a read, write, flush or get-id to perform.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "kvm/GuestMemory.h"
#include "kvm/Result.h"
#include "virtio/QueueProcessing.h"

namespace ember::devices {

namespace blk {
// 5.2.6 request types and status values.
constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupported = 2;
constexpr uint32_t kSectorSize = 512;
constexpr uint32_t kIdBytes = 20;
}  // namespace blk

struct BlockLimits {
  uint64_t capacity_sectors = 0;
  bool read_only = false;
  uint32_t seg_max = 126;       // data segments per request
  uint32_t size_max = 1 << 20;  // bytes per segment
};

struct BlockIo {
  uint32_t type;  // kTypeIn / kTypeOut / kTypeFlush / kTypeGetId
  uint64_t sector = 0;
  std::vector<virtio::BufferSegment> data;  // guest buffers (source for OUT, target otherwise)
  uint64_t data_len = 0;
  uint64_t status_addr = 0;  // guest address of the status byte
};

struct BlockReject {
  std::string reason;
};
struct BlockStatus {
  uint8_t status;
  uint64_t status_addr;
  std::string reason;  // why the request failed (for the log)
};

using BlockOutcome = std::variant<BlockIo, BlockStatus, BlockReject>;

BlockOutcome parseBlockRequest(const virtio::ChainBuffers& chain, const GuestMemory& mem,
                               const BlockLimits& limits);

}  // namespace ember::devices
