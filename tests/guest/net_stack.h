// A tiny Ethernet/ARP/IPv4/ICMP implementation over NetDriver, enough to resolve a peer and ping
// it (RFC 826 ARP, RFC 791 IPv4 without options or fragments, RFC 792 echo). The guest answers
// ARP requests for its own address while it waits, so the peer's kernel can always reach it.
// Addresses are kept in host order (10.0.2.15 is 0x0a00020f).
#pragma once

#include "virtio_net.h"

namespace guest {

constexpr uint16_t kEtherTypeIpv4 = 0x0800, kEtherTypeArp = 0x0806;

bool parse_ipv4(const char* s, uint32_t* out);  // dotted quad
// Formats into a static buffer per call slot (0-3) for printf.
const char* fmt_ipv4(uint32_t ip, int slot);
const char* fmt_mac(const uint8_t* mac, int slot);

uint16_t inet_checksum(const uint8_t* p, uint32_t len, uint32_t seed = 0);

class NetStack {
 public:
  NetStack(NetDriver* nic, uint32_t ip) : nic_(nic), ip_(ip) {}

  // ARP request for `ip` every 500 ms until answered; `mac` receives the peer's address.
  bool resolve(uint32_t ip, uint8_t mac[6], uint32_t timeout_ms, TestResult& r);
  // One ICMP echo request (identifier `id`, sequence `seq`, `payload` bytes) to `ip` at `mac`;
  // waits for the matching reply and checks it (addresses, checksums, identifier, sequence,
  // payload echoed byte for byte). `rtt` gets the round trip in TSC cycles.
  bool ping(uint32_t ip, const uint8_t mac[6], uint16_t id, uint16_t seq, uint32_t payload,
            uint32_t timeout_ms, uint64_t* rtt, TestResult& r);

  uint32_t arp_answered() const { return arp_answered_; }
  uint32_t ignored() const { return ignored_; }

 private:
  // Handles what every wait loop must: ARP requests for our address. True when consumed.
  bool background(const uint8_t* f, uint32_t len, TestResult& r);
  bool send_arp(uint16_t op, const uint8_t* dst_mac, const uint8_t* tha, uint32_t tpa,
                TestResult& r);

  NetDriver* nic_;
  uint32_t ip_;
  uint16_t ip_id_ = 1;
  uint32_t arp_answered_ = 0, ignored_ = 0;
};

}  // namespace guest
