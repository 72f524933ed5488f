// Ethernet II framing, ARP, IPv4 and ICMP echo for the network tests.
#include "net_stack.h"

namespace guest {

namespace {
constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint8_t kZeroMac[6] = {};
constexpr uint16_t kArpRequest = 1, kArpReply = 2;
constexpr uint8_t kProtoIcmp = 1, kIcmpEchoReply = 0, kIcmpEchoRequest = 8;
constexpr uint32_t kEthHdr = 14, kIpHdr = 20, kIcmpHdr = 8, kMinFrame = 60;

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}  // network order
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
void eth_header(uint8_t* f, const uint8_t* dst, const uint8_t* src, uint16_t type) {
  memcpy(f, dst, 6);
  memcpy(f + 6, src, 6);
  put16(f + 12, type);
}
uint8_t echo_byte(uint16_t seq, uint32_t i) {
  return static_cast<uint8_t>(seq + i * 3);
}

char g_fmt[4][20];
}  // namespace

bool parse_ipv4(const char* s, uint32_t* out) {
  uint32_t ip = 0;
  for (int part = 0; part < 4; ++part) {
    uint32_t v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) {
      v = v * 10 + static_cast<uint32_t>(*s++ - '0');
      ++digits;
    }
    if (digits == 0 || v > 255) return false;
    ip = ip << 8 | v;
    if (part < 3 && *s++ != '.') return false;
  }
  if (*s != 0) return false;
  *out = ip;
  return true;
}

const char* fmt_ipv4(uint32_t ip, int slot) {
  snprintf(g_fmt[slot & 3], sizeof g_fmt[0], "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff,
           (ip >> 8) & 0xff, ip & 0xff);
  return g_fmt[slot & 3];
}

const char* fmt_mac(const uint8_t* m, int slot) {
  snprintf(g_fmt[slot & 3], sizeof g_fmt[0], "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
           m[3], m[4], m[5]);
  return g_fmt[slot & 3];
}

uint16_t inet_checksum(const uint8_t* p, uint32_t len, uint32_t sum) {
  for (uint32_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

bool NetStack::send_arp(uint16_t op, const uint8_t* dst_mac, const uint8_t* tha, uint32_t tpa,
                        TestResult& r) {
  uint8_t* f = nic_->tx_buffer(1000, r);
  if (f == nullptr) return false;
  memset(f, 0, kMinFrame);
  eth_header(f, dst_mac, nic_->mac(), kEtherTypeArp);
  uint8_t* a = f + kEthHdr;
  put16(a, 1);                   // htype: Ethernet
  put16(a + 2, kEtherTypeIpv4);  // ptype
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, op);
  memcpy(a + 8, nic_->mac(), 6);
  put32(a + 14, ip_);
  memcpy(a + 18, tha, 6);
  put32(a + 24, tpa);
  return nic_->tx_submit(f, kMinFrame, NetDriver::TxShape::Split, true, r);
}

bool NetStack::background(const uint8_t* f, uint32_t len, TestResult& r) {
  if (len >= kEthHdr + 28 && get16(f + 12) == kEtherTypeArp) {
    const uint8_t* a = f + kEthHdr;
    if (get16(a) == 1 && get16(a + 2) == kEtherTypeIpv4 && a[4] == 6 && a[5] == 4 &&
        get16(a + 6) == kArpRequest && get32(a + 24) == ip_) {
      uint8_t sha[6];
      memcpy(sha, a + 8, 6);
      uint32_t spa = get32(a + 14);
      if (!send_arp(kArpReply, sha, sha, spa, r)) return true;
      ++arp_answered_;
      return true;
    }
  }
  ++ignored_;
  return false;
}

bool NetStack::resolve(uint32_t ip, uint8_t mac[6], uint32_t timeout_ms, TestResult& r) {
  uint64_t khz = tsc_khz();
  uint64_t end = rdtsc() + static_cast<uint64_t>(timeout_ms) * khz;
  uint64_t next_send = 0;
  uint32_t sent = 0;
  for (;;) {
    uint64_t now = rdtsc();
    if (now > end) {
      return fail(r, "%s: no ARP reply for %s in %u ms (%u requests, %lu frames received)",
                  nic_->device()->name(), fmt_ipv4(ip, 0), timeout_ms, sent,
                  static_cast<unsigned long>(nic_->rx_frames()));
    }
    if (now >= next_send) {
      if (!send_arp(kArpRequest, kBroadcast, kZeroMac, ip, r)) return false;
      ++sent;
      next_send = now + 500 * khz;
    }
    if (!nic_->tx_reap(r)) return false;
    uint8_t* f;
    uint32_t len;
    int rc = nic_->rx_poll(&f, &len, r);
    if (rc < 0) return false;
    if (rc == 0) {
      pause();
      continue;
    }
    bool got = false;
    if (len >= kEthHdr + 28 && get16(f + 12) == kEtherTypeArp) {
      const uint8_t* a = f + kEthHdr;
      if (get16(a + 6) == kArpReply && get32(a + 14) == ip && get16(a + 2) == kEtherTypeIpv4 &&
          memcmp(a + 18, nic_->mac(), 6) == 0 && get32(a + 24) == ip_) {
        memcpy(mac, a + 8, 6);
        got = true;
      }
    }
    if (!got) background(f, len, r);
    if (!nic_->rx_release(f, r) || !r.ok) return false;
    if (got) return true;
  }
}

bool NetStack::ping(uint32_t ip, const uint8_t mac[6], uint16_t id, uint16_t seq, uint32_t payload,
                    uint32_t timeout_ms, uint64_t* rtt, TestResult& r) {
  uint32_t icmp_len = kIcmpHdr + payload;
  uint32_t ip_len = kIpHdr + icmp_len;
  uint32_t frame_len = kEthHdr + ip_len;
  if (frame_len > NetDriver::kMaxFrame)
    return fail(r, "ICMP payload of %u bytes too large", payload);
  uint8_t* f = nic_->tx_buffer(1000, r);
  if (f == nullptr) return false;
  eth_header(f, mac, nic_->mac(), kEtherTypeIpv4);
  uint8_t* h = f + kEthHdr;
  h[0] = 0x45;
  h[1] = 0;
  put16(h + 2, static_cast<uint16_t>(ip_len));
  put16(h + 4, ip_id_++);
  put16(h + 6, 0x4000);  // DF
  h[8] = 64;
  h[9] = kProtoIcmp;
  put16(h + 10, 0);
  put32(h + 12, ip_);
  put32(h + 16, ip);
  put16(h + 10, inet_checksum(h, kIpHdr));
  uint8_t* c = h + kIpHdr;
  c[0] = kIcmpEchoRequest;
  c[1] = 0;
  put16(c + 2, 0);
  put16(c + 4, id);
  put16(c + 6, seq);
  for (uint32_t i = 0; i < payload; ++i) c[kIcmpHdr + i] = echo_byte(seq, i);
  put16(c + 2, inet_checksum(c, icmp_len));
  uint32_t len_out = frame_len < kMinFrame ? kMinFrame : frame_len;
  if (frame_len < kMinFrame) memset(f + frame_len, 0, kMinFrame - frame_len);
  uint64_t t0 = rdtsc();
  if (!nic_->tx_submit(f, len_out, NetDriver::TxShape::Split, true, r)) return false;
  uint64_t end = t0 + static_cast<uint64_t>(timeout_ms) * tsc_khz();
  for (;;) {
    if (!nic_->tx_reap(r)) return false;
    uint8_t* g;
    uint32_t len;
    int rc = nic_->rx_poll(&g, &len, r);
    if (rc < 0) return false;
    if (rc == 0) {
      if (rdtsc() > end) {
        return fail(r, "no echo reply from %s for seq %u in %u ms", fmt_ipv4(ip, 0), seq,
                    timeout_ms);
      }
      pause();
      continue;
    }
    uint64_t t1 = rdtsc();
    // An echo reply to us from the peer with our identifier?
    bool mine = false;
    const uint8_t* gh = g + kEthHdr;
    if (len >= kEthHdr + kIpHdr + kIcmpHdr && get16(g + 12) == kEtherTypeIpv4 &&
        (gh[0] >> 4) == 4 && gh[9] == kProtoIcmp && get32(gh + 12) == ip && get32(gh + 16) == ip_) {
      uint32_t ihl = (gh[0] & 0xfu) * 4u;
      uint32_t total = get16(gh + 2);
      const uint8_t* gc = gh + ihl;
      if (ihl >= kIpHdr && total >= ihl + kIcmpHdr && kEthHdr + total <= len &&
          gc[0] == kIcmpEchoReply && get16(gc + 4) == id) {
        mine = true;
        uint32_t glen = total - ihl;
        if (memcmp(g, nic_->mac(), 6) != 0) {
          fail(r, "echo reply sent to %s, not to us", fmt_mac(g, 0));
        } else if (inet_checksum(gh, ihl) != 0) {
          fail(r, "echo reply with a bad IPv4 header checksum");
        } else if (inet_checksum(gc, glen) != 0) {
          fail(r, "echo reply with a bad ICMP checksum");
        } else if (gc[1] != 0) {
          fail(r, "echo reply with code %u", gc[1]);
        } else if (get16(gc + 6) != seq) {
          fail(r, "echo reply for seq %u while waiting for %u", get16(gc + 6), seq);
        } else if (glen != icmp_len) {
          fail(r, "echo reply carries %u payload bytes, sent %u", glen - kIcmpHdr, payload);
        } else {
          for (uint32_t i = 0; i < payload; ++i) {
            if (gc[kIcmpHdr + i] != echo_byte(seq, i)) {
              fail(r, "echo reply payload byte %u is %02x, sent %02x", i, gc[kIcmpHdr + i],
                   echo_byte(seq, i));
              break;
            }
          }
        }
        *rtt = t1 - t0;
      }
    }
    if (!mine) background(g, len, r);
    if (!nic_->rx_release(g, r) || !r.ok) return false;
    if (mine) return true;
  }
}

}  // namespace guest
