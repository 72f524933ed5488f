// virtio-net tests (virtio 1.2 section 5.1) against real kernel networking on the host's side of
// a tap:
//
// virtio-net-ping   resolves net.peer with ARP (from net.ip) and sends net.count ICMP echo
//                   requests of net.size payload bytes; each reply must come from the peer, to
//                   us, with valid checksums and the request's identifier, sequence and payload.
// virtio-net-burst  sends net.burst broadcast frames of net.burst.len bytes (EtherType 0x88b5,
//                   net_burst.h) as fast as the transmit queue takes them, then, with net.rx=M,
//                   announces "ready" on the console and receives M frames the host sends (each
//                   sequence number once, every byte checked). Frames rotate through the three
//                   transmit chain shapes (one descriptor, header apart, indirect).
//
// net.mrg=on negotiates VIRTIO_NET_F_MRG_RXBUF (12-byte header on the legacy face too);
// net.event_idx=on negotiates VIRTIO_RING_F_EVENT_IDX and kicks only when avail_event asks.
#include "net_burst.h"
#include "net_stack.h"
#include "tests.h"

namespace guest {

namespace {

NetDriver g_nic;  // large (per-head tables): static, reused by every test

bool flag(const char* key) {
  char v[8];
  return cmdline_get(key, v, sizeof v) && (memcmp(v, "on", 3) == 0 || memcmp(v, "1", 2) == 0);
}

VirtioDevice* start_nic(TestResult& r) {
  VirtioDevice* d = VirtioDevice::find(kVirtioTypeNet);
  if (d == nullptr) {
    fail(r, "no virtio-net device");
    return nullptr;
  }
  return d;
}

NetDriver::Options options() {
  NetDriver::Options o;
  o.mrg_rxbuf = flag("net.mrg");
  o.event_idx = flag("net.event_idx");
  return o;
}

bool ip_arg(const char* key, uint32_t* ip, TestResult& r) {
  char v[32];
  if (!cmdline_get(key, v, sizeof v))
    return fail(r, "%s= is required (e.g. %s=10.0.2.15)", key, key);
  if (!parse_ipv4(v, ip)) return fail(r, "%s=%s is not a dotted IPv4 address", key, v);
  return true;
}

uint64_t us(uint64_t cycles) {
  return cycles * 1000 / tsc_khz();
}

}  // namespace

bool net_present() {
  return VirtioDevice::find(kVirtioTypeNet) != nullptr;
}

bool net_peer_present() {
  char v[32];
  return net_present() && cmdline_get("net.peer", v, sizeof v) &&
         cmdline_get("net.ip", v, sizeof v);
}

void test_virtio_net_ping(TestResult& r) {
  VirtioDevice* d = start_nic(r);
  if (d == nullptr) return;
  uint32_t ip, peer;
  if (!ip_arg("net.ip", &ip, r) || !ip_arg("net.peer", &peer, r)) return;
  uint64_t count = cmdline_number("net.count", 4);
  uint64_t payload = cmdline_number("net.size", 56);
  if (count == 0 || count > 1000) return void(fail(r, "net.count=%lu not in 1..1000", count));
  if (payload > 1472) return void(fail(r, "net.size=%lu above 1472", payload));
  DeviceSession session{d};
  if (!g_nic.start(d, options(), r)) return;
  NetStack stack(&g_nic, ip);
  uint8_t peer_mac[6];
  uint64_t t0 = rdtsc();
  if (!stack.resolve(peer, peer_mac, 5000, r)) return;
  uint64_t arp = rdtsc() - t0;
  uint64_t min = ~0ULL, max = 0, sum = 0;
  uint16_t id = static_cast<uint16_t>(0xe000 | (rdtsc() & 0xfff));
  for (uint64_t s = 1; s <= count; ++s) {
    uint64_t rtt = 0;
    if (!stack.ping(peer, peer_mac, id, static_cast<uint16_t>(s), static_cast<uint32_t>(payload),
                    2000, &rtt, r)) {
      return;
    }
    min = rtt < min ? rtt : min;
    max = rtt > max ? rtt : max;
    sum += rtt;
  }
  if (!g_nic.tx_drain(2000, r) || !g_nic.healthy(r)) return;
  printf("virtio-net-ping: %s mac %s header %u bytes%s%s; %s is at %s (ARP %lu us)\n", d->name(),
         fmt_mac(g_nic.mac(), 0), g_nic.header_size(), g_nic.indirect() ? ", indirect" : "",
         g_nic.event_idx() ? ", event_idx" : "", fmt_ipv4(peer, 1), fmt_mac(peer_mac, 2), us(arp));
  printf(
      "virtio-net-ping: %lu/%lu replies from %s, %lu bytes each, rtt min/avg/max %lu/%lu/%lu us;"
      " %u ARP requests answered, %u other frames ignored\n",
      count, count, fmt_ipv4(peer, 0), payload, us(min), us(sum / count), us(max),
      stack.arp_answered(), stack.ignored());
  if (g_nic.num_buffers_zero() != 0) {
    printf("virtio-net-ping: note: %lu frames arrived with num_buffers 0 (5.1.6.4.1 wants 1)\n",
           static_cast<unsigned long>(g_nic.num_buffers_zero()));
  }
}

void test_virtio_net_burst(TestResult& r) {
  using namespace ember_net;
  VirtioDevice* d = start_nic(r);
  if (d == nullptr) return;
  uint64_t n = cmdline_number("net.burst", 1000);
  uint64_t len = cmdline_number("net.burst.len", kBurstMaxLen);
  uint64_t rx_want = cmdline_number("net.rx", 0);
  uint64_t rx_ms = cmdline_number("net.rx.ms", 20000);
  if (n == 0 || n > 10000000) return void(fail(r, "net.burst=%lu not in 1..10000000", n));
  if (len < kBurstMinLen || len > kBurstMaxLen) {
    return void(fail(r, "net.burst.len=%lu not in %u..%u", len, kBurstMinLen, kBurstMaxLen));
  }
  constexpr uint32_t kMaxRx = 4096;
  if (rx_want > kMaxRx) return void(fail(r, "net.rx=%lu above %u", rx_want, kMaxRx));
  DeviceSession session{d};
  if (!g_nic.start(d, options(), r)) return;

  // A template of the longest frame; every transmit buffer gets a copy once, then only the
  // sequence number changes per frame.
  static uint8_t tmpl[kBurstMaxLen];
  static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  burst_fill(tmpl, kBurstMaxLen, kBroadcast, g_nic.mac(), true, 0, static_cast<uint32_t>(n));
  tmpl[30] = static_cast<uint8_t>(len);  // the length field of the frames actually sent
  tmpl[31] = static_cast<uint8_t>(len >> 8);
  uint8_t* bufs[NetDriver::kMaxBufs];
  uint16_t nbufs = 0;
  while (nbufs < NetDriver::kMaxBufs && nbufs < n) {
    TestResult probe;
    uint8_t* b = g_nic.tx_buffer(0, probe);
    if (b == nullptr) break;
    bufs[nbufs++] = b;
  }
  if (nbufs == 0) return void(fail(r, "no transmit buffers"));
  // The first round of frames uses those buffers (copying the template into each); later frames
  // reuse whichever buffer the device returned, which already holds it.
  uint64_t t0 = rdtsc();
  uint64_t sent = 0;
  uint16_t batch = 0;
  uint32_t shapes[3] = {};
  while (sent < n) {
    uint8_t* f;
    if (sent < nbufs) {
      f = bufs[sent];
      memcpy(f, tmpl, len);
    } else {
      f = g_nic.tx_buffer(5000, r);
      if (f == nullptr) return;
    }
    burst_put32(f + 22, static_cast<uint32_t>(sent));
    auto shape = static_cast<NetDriver::TxShape>(sent % 3);
    if (shape == NetDriver::TxShape::Indirect && !g_nic.indirect())
      shape = NetDriver::TxShape::Split;
    ++shapes[static_cast<int>(shape)];
    bool kick = ++batch == 32 || sent + 1 == n;
    if (kick) batch = 0;
    if (!g_nic.tx_submit(f, static_cast<uint32_t>(len), shape, kick, r)) return;
    ++sent;
  }
  if (!g_nic.tx_drain(10000, r)) return;
  uint64_t t1 = rdtsc();
  uint64_t elapsed_us = us(t1 - t0) ? us(t1 - t0) : 1;
  uint64_t bytes = n * len;
  printf(
      "virtio-net-burst: %s sent %lu frames of %lu bytes in %lu ms: %lu frames/s, %lu.%02lu MB/s"
      " (chains: %u single, %u split, %u indirect; %lu transmit kicks)\n",
      d->name(), n, len, elapsed_us / 1000, n * 1000000 / elapsed_us, bytes / elapsed_us,
      (bytes * 100 / elapsed_us) % 100, shapes[0], shapes[1], shapes[2],
      static_cast<unsigned long>(g_nic.kicks(NetDriver::kTxQueue)));
  if (!g_nic.healthy(r)) return;
  if (rx_want == 0) return;

  // Receive: the host sends rx_want frames once it sees the "ready" line.
  static uint8_t seen[kMaxRx / 8];
  memset(seen, 0, sizeof seen);
  printf("virtio-net-burst: ready to receive %lu frames at %s\n", rx_want, fmt_mac(g_nic.mac(), 0));
  uint64_t end = rdtsc() + rx_ms * tsc_khz();
  uint64_t got = 0, other = 0, first = 0, last = 0;
  while (got < rx_want) {
    uint8_t* f;
    uint32_t flen;
    int rc = g_nic.rx_poll(&f, &flen, r);
    if (rc < 0) return;
    if (rc == 0) {
      if (rdtsc() > end) {
        return void(fail(r, "received %lu of %lu host frames in %lu ms (%lu other frames)", got,
                         rx_want, rx_ms, other));
      }
      pause();
      continue;
    }
    // Header fields checked one by one, the pattern with one string compare.
    bool ours = flen >= kBurstMinLen && flen <= kBurstMaxLen && f[12] == 0x88 && f[13] == 0xb5 &&
                memcmp(f + 14, kHostMagic, 8) == 0;
    if (ours) {
      uint32_t seq = burst_get32(f + 22), count = burst_get32(f + 26);
      uint32_t flen_field = static_cast<uint32_t>(f[30] | f[31] << 8);
      if (count != rx_want || seq >= count || flen_field != flen) {
        return void(fail(r, "host frame %lu: seq %u count %u length %u/%u", got, seq, count,
                         flen_field, flen));
      }
      if (memcmp(f, g_nic.mac(), 6) != 0) {
        return void(fail(r, "host frame seq %u addressed to %s", seq, fmt_mac(f, 0)));
      }
      if (memcmp(f + kBurstHeader, tmpl + kBurstHeader, flen - kBurstHeader) != 0) {
        return void(fail(r, "host frame seq %u: payload differs from the pattern", seq));
      }
      if (seen[seq / 8] & (1u << (seq % 8))) return void(fail(r, "host frame seq %u twice", seq));
      seen[seq / 8] = static_cast<uint8_t>(seen[seq / 8] | (1u << (seq % 8)));
      if (got == 0) first = rdtsc();
      last = rdtsc();
      ++got;
    } else {
      ++other;
    }
    if (!g_nic.rx_release(f, r)) return;
  }
  printf(
      "virtio-net-burst: received %lu/%lu host frames in %lu ms (%lu other frames, %lu receive"
      " kicks)\n",
      got, rx_want, us(last - first) / 1000, other,
      static_cast<unsigned long>(g_nic.kicks(NetDriver::kRxQueue)));
  g_nic.healthy(r);
}

}  // namespace guest
