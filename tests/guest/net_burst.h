// The burst frames of virtio-net-burst, shared by the test guest and the host-side test
// (header-only, includes only <stdint.h>, usable from host C++).
//
// A burst frame is an Ethernet II frame with the IEEE "local experimental" EtherType 0x88b5:
//
//   offset  size  field
//    0       6    destination MAC (guest -> host: broadcast; host -> guest: the guest's MAC)
//    6       6    source MAC
//   12       2    EtherType 0x88b5, big-endian
//   14       8    magic: "EMBER-G>" (sent by the guest) or "EMBER-H>" (sent by the host)
//   22       4    sequence number, little-endian, 0 .. count-1
//   26       4    count (frames in the burst), little-endian
//   30       2    frame length in bytes (this whole frame), little-endian
//   32     ...    burst_byte(i) at frame offset i, up to the frame length
//
// Frames are 60..1514 bytes long (no FCS: the tap neither adds nor expects one).
#pragma once

#include <stdint.h>

namespace ember_net {

constexpr uint16_t kBurstEtherType = 0x88b5;
constexpr uint32_t kBurstHeader = 32;  // bytes before the pattern
constexpr uint32_t kBurstMinLen = 60, kBurstMaxLen = 1514;
constexpr char kGuestMagic[8] = {'E', 'M', 'B', 'E', 'R', '-', 'G', '>'};
constexpr char kHostMagic[8] = {'E', 'M', 'B', 'E', 'R', '-', 'H', '>'};

// The pattern byte at frame offset `i` (i >= kBurstHeader): the same in every frame, so a sender
// fills a template once and patches only the sequence number.
constexpr uint8_t burst_byte(uint32_t i) {
  return static_cast<uint8_t>(i * 7 + 3 + (i >> 8));
}

inline uint32_t burst_get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
inline void burst_put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Writes a whole burst frame (header and pattern) into `f`, `len` bytes.
inline void burst_fill(uint8_t* f, uint32_t len, const uint8_t dst[6], const uint8_t src[6],
                       bool from_guest, uint32_t seq, uint32_t count) {
  for (int i = 0; i < 6; ++i) {
    f[i] = dst[i];
    f[6 + i] = src[i];
  }
  f[12] = static_cast<uint8_t>(kBurstEtherType >> 8);
  f[13] = static_cast<uint8_t>(kBurstEtherType);
  for (int i = 0; i < 8; ++i)
    f[14 + i] = static_cast<uint8_t>((from_guest ? kGuestMagic : kHostMagic)[i]);
  burst_put32(f + 22, seq);
  burst_put32(f + 26, count);
  f[30] = static_cast<uint8_t>(len);
  f[31] = static_cast<uint8_t>(len >> 8);
  for (uint32_t i = kBurstHeader; i < len; ++i) f[i] = burst_byte(i);
}

// Whether `f` (`len` bytes as received) is a burst frame from the guest (or the host) and its
// sequence number; checks the EtherType, magic, length field and every pattern byte.
inline bool burst_parse(const uint8_t* f, uint32_t len, bool from_guest, uint32_t* seq,
                        uint32_t* count) {
  if (len < kBurstMinLen || len > kBurstMaxLen) return false;
  if (f[12] != (kBurstEtherType >> 8) || f[13] != (kBurstEtherType & 0xff)) return false;
  for (int i = 0; i < 8; ++i) {
    if (f[14 + i] != static_cast<uint8_t>((from_guest ? kGuestMagic : kHostMagic)[i])) return false;
  }
  if ((static_cast<uint32_t>(f[30]) | static_cast<uint32_t>(f[31]) << 8) != len) return false;
  for (uint32_t i = kBurstHeader; i < len; ++i) {
    if (f[i] != burst_byte(i)) return false;
  }
  *seq = burst_get32(f + 22);
  *count = burst_get32(f + 26);
  return *seq < *count;
}

}  // namespace ember_net
