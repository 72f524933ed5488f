// virtio-blk request validation.
#include "devices/BlockRequest.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "kvm/LittleEndian.h"

namespace ember::devices {

using virtio::BufferSegment;

namespace {
constexpr uint32_t kHeaderBytes = 16;  // struct virtio_blk_req: type, reserved, sector

// Takes `n` bytes from the front of `segs` (splitting a segment if needed) into `out`.
bool takeFront(std::vector<BufferSegment>& segs, size_t& index, uint32_t& offset, uint64_t n,
               std::vector<BufferSegment>* out) {
  while (n > 0) {
    if (index >= segs.size()) return false;
    BufferSegment& s = segs[index];
    uint32_t avail = s.len - offset;
    uint32_t take = static_cast<uint32_t>(std::min<uint64_t>(avail, n));
    if (out && take > 0) out->push_back(BufferSegment{s.addr + offset, take});
    offset += take;
    n -= take;
    if (offset == s.len) {
      ++index;
      offset = 0;
    }
  }
  return true;
}
}  // namespace

BlockOutcome parseBlockRequest(const virtio::ChainBuffers& chain, const GuestMemory& mem,
                               const BlockLimits& limits) {
  // Header: the first 16 device-readable bytes (any descriptor layout, 2.6.4).
  if (chain.readableBytes() < kHeaderBytes) {
    if (chain.readable.empty() && !chain.writable.empty()) {
      return BlockReject{"request header is in a device-writable buffer"};
    }
    return BlockReject{
        fmt::format("request has {} header bytes, needs {}", chain.readableBytes(), kHeaderBytes)};
  }
  // Status: the last byte of the last device-writable buffer.
  if (chain.writable.empty()) {
    return BlockReject{"request has no device-writable status byte"};
  }
  if (chain.writable.back().len == 0) {
    return BlockReject{"request's status descriptor has length 0"};
  }
  std::vector<BufferSegment> readable = chain.readable;
  std::vector<BufferSegment> header_segs;
  size_t ri = 0;
  uint32_t roff = 0;
  takeFront(readable, ri, roff, kHeaderBytes, &header_segs);
  uint8_t header[kHeaderBytes];
  size_t pos = 0;
  for (const auto& s : header_segs) {
    if (!mem.read(GuestAddress(s.addr), std::span(header + pos, s.len))) {
      return BlockReject{"request header is outside RAM"};
    }
    pos += s.len;
  }
  // 5.2.6 struct virtio_blk_req: le32 type, le32 reserved, le64 sector.
  uint32_t type = loadLe<uint32_t>(std::span(header).subspan(0, 4));
  uint64_t sector = loadLe<uint64_t>(std::span(header).subspan(8, 8));

  // Data: readable bytes after the header (OUT), or writable bytes before the status byte.
  std::vector<BufferSegment> data_in;  // readable remainder
  takeFront(readable, ri, roff, chain.readableBytes() - kHeaderBytes, &data_in);
  std::vector<BufferSegment> data_out(chain.writable);  // writable minus the status byte
  uint64_t status_addr = data_out.back().addr + data_out.back().len - 1;
  if (--data_out.back().len == 0) data_out.pop_back();

  BlockIo io;
  io.type = type;
  io.sector = sector;
  io.status_addr = status_addr;
  auto status = [&](uint8_t st, std::string why) -> BlockOutcome {
    return BlockStatus{st, status_addr, std::move(why)};
  };

  switch (type) {
    case blk::kTypeIn:
    case blk::kTypeOut: {
      bool is_out = type == blk::kTypeOut;
      if (is_out ? !data_out.empty() : !data_in.empty()) {
        return BlockReject{fmt::format("{} request carries data in the wrong direction",
                                       is_out ? "write" : "read")};
      }
      io.data = is_out ? data_in : data_out;
      for (const auto& s : io.data) io.data_len += s.len;
      if (io.data.size() > limits.seg_max) {
        return status(blk::kStatusIoErr, fmt::format("{} data segments exceed seg_max {}",
                                                     io.data.size(), limits.seg_max));
      }
      for (const auto& s : io.data) {
        if (s.len > limits.size_max) {
          return status(blk::kStatusIoErr, fmt::format("a {}-byte segment exceeds size_max {}",
                                                       s.len, limits.size_max));
        }
      }
      if (io.data_len == 0) {
        return BlockReject{"read or write request without data"};
      }
      if (io.data_len % blk::kSectorSize != 0) {
        return status(blk::kStatusIoErr,
                      fmt::format("length {} is not a multiple of 512", io.data_len));
      }
      uint64_t sectors = io.data_len / blk::kSectorSize;
      uint64_t end = 0;
      if (__builtin_add_overflow(sector, sectors, &end) || end > limits.capacity_sectors) {
        return status(blk::kStatusIoErr, fmt::format("sectors {}+{} are beyond the capacity of {}",
                                                     sector, sectors, limits.capacity_sectors));
      }
      if (is_out && limits.read_only) {
        return status(blk::kStatusIoErr, "write to a read-only disk");
      }
      return io;
    }
    case blk::kTypeFlush:
      if (!data_in.empty() || !data_out.empty()) {
        return BlockReject{"flush request carries data"};
      }
      return io;
    case blk::kTypeGetId: {
      if (!data_in.empty()) {
        return BlockReject{"get-id request carries device-readable data"};
      }
      io.data = data_out;
      for (const auto& s : io.data) io.data_len += s.len;
      if (io.data_len < blk::kIdBytes) {
        return status(blk::kStatusIoErr,
                      fmt::format("get-id buffer of {} bytes is below 20", io.data_len));
      }
      return io;
    }
    default:
      return status(blk::kStatusUnsupported, fmt::format("unknown request type {}", type));
  }
}

}  // namespace ember::devices
