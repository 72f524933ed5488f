// The vhost-user wire format.
#include "virtio/VhostUserMessage.h"

#include <fmt/format.h>

#include "kvm/LittleEndian.h"

namespace ember::virtio::vhost_user {

const char* requestName(Request request) {
  switch (request) {
    case Request::GetFeatures:
      return "GET_FEATURES";
    case Request::SetFeatures:
      return "SET_FEATURES";
    case Request::SetOwner:
      return "SET_OWNER";
    case Request::SetMemTable:
      return "SET_MEM_TABLE";
    case Request::SetVringNum:
      return "SET_VRING_NUM";
    case Request::SetVringAddr:
      return "SET_VRING_ADDR";
    case Request::SetVringBase:
      return "SET_VRING_BASE";
    case Request::GetVringBase:
      return "GET_VRING_BASE";
    case Request::SetVringKick:
      return "SET_VRING_KICK";
    case Request::SetVringCall:
      return "SET_VRING_CALL";
    case Request::GetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case Request::SetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case Request::SetVringEnable:
      return "SET_VRING_ENABLE";
  }
  return "unknown";
}

std::vector<uint8_t> encode(Request request, std::span<const uint8_t> payload, bool need_reply) {
  std::vector<uint8_t> out(kHeaderSize + payload.size());
  storeLe<uint32_t>(std::span(out).subspan(0, 4), static_cast<uint32_t>(request));
  storeLe<uint32_t>(std::span(out).subspan(4, 4), kVersion | (need_reply ? kFlagNeedReply : 0));
  storeLe<uint32_t>(std::span(out).subspan(8, 4), static_cast<uint32_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + kHeaderSize);
  return out;
}

std::vector<uint8_t> u64Payload(uint64_t value) {
  std::vector<uint8_t> out(8);
  storeLe<uint64_t>(out, value);
  return out;
}

std::vector<uint8_t> vringStatePayload(uint32_t index, uint32_t num) {
  std::vector<uint8_t> out(8);
  storeLe<uint32_t>(std::span(out).subspan(0, 4), index);
  storeLe<uint32_t>(std::span(out).subspan(4, 4), num);
  return out;
}

std::vector<uint8_t> vringAddrPayload(uint32_t index, uint64_t desc, uint64_t used,
                                      uint64_t avail) {
  std::vector<uint8_t> out(40);
  storeLe<uint32_t>(std::span(out).subspan(0, 4), index);
  storeLe<uint32_t>(std::span(out).subspan(4, 4), 0);  // flags: no VHOST_VRING_F_LOG
  storeLe<uint64_t>(std::span(out).subspan(8, 8), desc);
  storeLe<uint64_t>(std::span(out).subspan(16, 8), used);
  storeLe<uint64_t>(std::span(out).subspan(24, 8), avail);
  storeLe<uint64_t>(std::span(out).subspan(32, 8), 0);  // log_guest_addr
  return out;
}

std::vector<uint8_t> memTablePayload(std::span<const MemoryRegion> regions) {
  std::vector<uint8_t> out(8 + 32 * regions.size());
  storeLe<uint32_t>(std::span(out).subspan(0, 4), static_cast<uint32_t>(regions.size()));
  for (size_t i = 0; i < regions.size(); ++i) {
    auto r = std::span(out).subspan(8 + 32 * i, 32);
    storeLe<uint64_t>(r.subspan(0, 8), regions[i].guest_phys_addr);
    storeLe<uint64_t>(r.subspan(8, 8), regions[i].memory_size);
    storeLe<uint64_t>(r.subspan(16, 8), regions[i].userspace_addr);
    storeLe<uint64_t>(r.subspan(24, 8), regions[i].mmap_offset);
  }
  return out;
}

std::optional<Header> parseHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) return std::nullopt;
  return Header{static_cast<Request>(loadLe<uint32_t>(bytes.subspan(0, 4))),
                loadLe<uint32_t>(bytes.subspan(4, 4)), loadLe<uint32_t>(bytes.subspan(8, 4))};
}

namespace {
bool isReplyTo(const Header& h, Request request, size_t size, std::string* error) {
  if (h.request != request || !(h.flags & kFlagReply) || (h.flags & 0x3) != kVersion) {
    *error = fmt::format("the backend answered {} with request {} flags {:#x}",
                         requestName(request), static_cast<uint32_t>(h.request), h.flags);
    return false;
  }
  if (h.size != size) {
    *error = fmt::format("the backend's reply to {} has {} bytes, not {}", requestName(request),
                         h.size, size);
    return false;
  }
  return true;
}
}  // namespace

std::optional<uint64_t> replyU64(const Header& header, std::span<const uint8_t> payload,
                                 Request request, std::string* error) {
  if (!isReplyTo(header, request, 8, error) || payload.size() != 8) return std::nullopt;
  return loadLe<uint64_t>(payload);
}

std::optional<uint32_t> replyVringBase(const Header& header, std::span<const uint8_t> payload,
                                       uint32_t index, std::string* error) {
  if (!isReplyTo(header, Request::GetVringBase, 8, error) || payload.size() != 8) {
    return std::nullopt;
  }
  if (loadLe<uint32_t>(payload.subspan(0, 4)) != index) {
    *error = fmt::format("the backend's GET_VRING_BASE reply is for ring {}, not {}",
                         loadLe<uint32_t>(payload.subspan(0, 4)), index);
    return std::nullopt;
  }
  return loadLe<uint32_t>(payload.subspan(4, 4));
}

}  // namespace ember::virtio::vhost_user
