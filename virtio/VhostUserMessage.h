// vhost-user messages (QEMU's docs/interop/vhost-user.rst, "Message Specification"): the
// frontend's side of the wire format. Every message is a 12-byte header (le32 request, le32
// flags, le32 payload size) and a payload; file descriptors travel beside it as SCM_RIGHTS
// ancillary data. Flags: bits 0-1 the protocol version (1), bit 2 a reply, bit 3 need_reply
// (REPLY_ACK). Only the requests Ember sends are named here.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ember::virtio::vhost_user {

enum class Request : uint32_t {
  GetFeatures = 1,
  SetFeatures = 2,
  SetOwner = 3,
  SetMemTable = 5,
  SetVringNum = 8,
  SetVringAddr = 9,
  SetVringBase = 10,
  GetVringBase = 11,
  SetVringKick = 12,
  SetVringCall = 13,
  GetProtocolFeatures = 15,
  SetProtocolFeatures = 16,
  SetVringEnable = 18,
};
const char* requestName(Request request);

constexpr uint32_t kVersion = 1;
constexpr uint32_t kFlagReply = 1u << 2, kFlagNeedReply = 1u << 3;
constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxPayload = 4096;  // a reply larger than this is a broken backend
constexpr size_t kMaxRegions = 8;     // VHOST_USER_MAX_RAM_SLOTS without the slots extension
constexpr uint64_t kFeatureProtocolFeatures = 1ULL << 30;  // VHOST_USER_F_PROTOCOL_FEATURES
constexpr uint64_t kProtocolReplyAck = 1ULL << 3;          // VHOST_USER_PROTOCOL_F_REPLY_ACK
constexpr uint64_t kVringNoFd = 1ULL << 8;                 // SET_VRING_KICK/CALL: no fd

struct MemoryRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
};

struct Header {
  Request request;
  uint32_t flags;
  uint32_t size;
};

// A frontend message: header and payload bytes.
std::vector<uint8_t> encode(Request request, std::span<const uint8_t> payload, bool need_reply);
std::vector<uint8_t> u64Payload(uint64_t value);
// struct vhost_vring_state: le32 index, le32 num.
std::vector<uint8_t> vringStatePayload(uint32_t index, uint32_t num);
// struct vhost_vring_addr: le32 index, le32 flags, le64 desc, used, avail, log (user addresses).
std::vector<uint8_t> vringAddrPayload(uint32_t index, uint64_t desc, uint64_t used, uint64_t avail);
// struct VhostUserMemory: le32 nregions, le32 padding, then the regions.
std::vector<uint8_t> memTablePayload(std::span<const MemoryRegion> regions);

std::optional<Header> parseHeader(std::span<const uint8_t> bytes);
// The u64 of a reply, checking that it answers `request` and is a reply of the right size.
std::optional<uint64_t> replyU64(const Header& header, std::span<const uint8_t> payload,
                                 Request request, std::string* error);
// GET_VRING_BASE's reply: a vring state for `index`; its num is the ring's next available index.
std::optional<uint32_t> replyVringBase(const Header& header, std::span<const uint8_t> payload,
                                       uint32_t index, std::string* error);

}  // namespace ember::virtio::vhost_user
