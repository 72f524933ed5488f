// virtio-console (virtio 1.2 section 5.3, port 0 without VIRTIO_CONSOLE_F_MULTIPORT: receiveq 0,
// transmitq 1) writes a greeting line the host finds on its stdout and, when
// `console.expect=TEXT` is given, reads TEXT back from the receive queue (the host feeds it on
// stdin; TEXT is one command-line token, so it has no spaces). virtio-rng (section 5.4) reads
// 64 random bytes twice, accepting partial fills.
#include "tests.h"
#include "virtio_device.h"

namespace guest {

namespace {

uint8_t* g_io = nullptr;  // one page of buffers, allocated once

bool io_page(TestResult& r) {
  if (g_io == nullptr) g_io = static_cast<uint8_t*>(alloc_pages(1));
  return g_io != nullptr || fail(r, "out of pages");
}

bool contains(const char* hay, size_t n, const char* needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; ++i) {
    if (memcmp(hay + i, needle, m) == 0) return true;
  }
  return false;
}

}  // namespace

bool console_present() {
  return VirtioDevice::find(kVirtioTypeConsole) != nullptr;
}
bool rng_present() {
  return VirtioDevice::find(kVirtioTypeRng) != nullptr;
}

void test_virtio_console(TestResult& r) {
  VirtioDevice* d = VirtioDevice::find(kVirtioTypeConsole);
  if (d == nullptr) return void(fail(r, "no virtio-console device"));
  if (!io_page(r)) return;
  DeviceSession session{d};
  if (!d->begin(0, true, r) || !d->setup_queues(2, 64, 0, r) || !d->driver_ok(r)) return;
  // Receive buffers first (5.3.6: the driver keeps receiveq supplied), 4 x 256 bytes.
  constexpr uint16_t kRx = 4;
  constexpr uint32_t kRxLen = 256;
  uint8_t* rx = g_io;
  uint8_t* buf_of[64] = {};  // receive buffer by descriptor head (the queue has <= 64 entries)
  for (uint16_t i = 0; i < kRx; ++i) {
    VqSeg s{reinterpret_cast<uint64_t>(rx + i * kRxLen), kRxLen, true};
    int head = d->queue(0).add(&s, 1, false);
    if (head < 0 || head >= 64) return void(fail(r, "%s: receiveq full", d->name()));
    buf_of[head] = rx + i * kRxLen;
  }
  d->kick(0);
  static const char kLine[] = "virtio-console: hello from the test guest\n";
  uint8_t* tx = g_io + kRx * kRxLen;
  memcpy(tx, kLine, sizeof kLine - 1);
  VqSeg s{reinterpret_cast<uint64_t>(tx), sizeof kLine - 1, false};
  if (d->queue(1).add(&s, 1, false) < 0) return void(fail(r, "%s: transmitq full", d->name()));
  d->kick(1);
  uint16_t head;
  uint32_t len;
  if (!d->wait_used(1, &head, &len, VirtioDevice::kTimeoutMs, r)) return;
  char expect[128];
  if (!cmdline_get("console.expect", expect, sizeof expect)) return;
  // Accumulate received bytes until the expected text shows up.
  char got[512];
  size_t n = 0;
  while (!contains(got, n, expect) && n < sizeof got - 1) {
    TestResult waited;
    if (!d->wait_used(0, &head, &len, VirtioDevice::kTimeoutMs, waited)) {
      got[n] = 0;
      return void(
          fail(r, "\"%s\" not received (%zu bytes: \"%s\"): %s", expect, n, got, waited.reason));
    }
    uint8_t* buf = head < 64 ? buf_of[head] : nullptr;
    if (buf == nullptr || len > kRxLen) {
      return void(fail(r, "%s: used head %u len %u on receiveq", d->name(), head, len));
    }
    size_t take = len < sizeof got - 1 - n ? len : sizeof got - 1 - n;
    memcpy(got + n, buf, take);
    n += take;
    VqSeg again{reinterpret_cast<uint64_t>(buf), kRxLen, true};
    int h = d->queue(0).add(&again, 1, false);
    if (h < 0 || h >= 64) return void(fail(r, "%s: receiveq full", d->name()));
    buf_of[h] = buf;
    d->kick(0);
  }
  if (!contains(got, n, expect)) return void(fail(r, "%s: \"%s\" not received", d->name(), expect));
  printf("virtio-console: received \"%s\"\n", expect);
}

void test_virtio_rng(TestResult& r) {
  VirtioDevice* d = VirtioDevice::find(kVirtioTypeRng);
  if (d == nullptr) return void(fail(r, "no virtio-rng device"));
  if (!io_page(r)) return;
  DeviceSession session{d};
  if (!d->begin(0, true, r) || !d->setup_queues(1, 64, 0, r) || !d->driver_ok(r)) return;
  uint8_t* out[2] = {g_io, g_io + 64};
  for (int k = 0; k < 2; ++k) {
    memset(out[k], 0, 64);
    uint32_t got = 0;
    for (int tries = 0; got < 64; ++tries) {
      if (tries == 64) return void(fail(r, "%s: only %u bytes after 64 requests", d->name(), got));
      VqSeg s{reinterpret_cast<uint64_t>(out[k] + got), 64 - got, true};
      if (d->queue(0).add(&s, 1, false) < 0) return void(fail(r, "%s: queue full", d->name()));
      d->kick(0);
      uint16_t head;
      uint32_t len;
      if (!d->wait_used(0, &head, &len, VirtioDevice::kTimeoutMs, r)) return;
      // 5.4.6.2: one or more bytes, never more than the buffer.
      if (len == 0 || len > 64 - got) {
        return void(fail(r, "%s: used len %u for a %u-byte buffer", d->name(), len, 64 - got));
      }
      got += len;
    }
    bool zero = true;
    for (int i = 0; i < 64; ++i) zero = zero && out[k][i] == 0;
    if (zero) return void(fail(r, "%s: read %d returned 64 zero bytes", d->name(), k + 1));
  }
  if (memcmp(out[0], out[1], 64) == 0)
    return void(fail(r, "%s: two reads returned the same bytes", d->name()));
  printf("virtio-rng: %s, %02x%02x%02x%02x... then %02x%02x%02x%02x...\n", d->name(), out[0][0],
         out[0][1], out[0][2], out[0][3], out[1][0], out[1][1], out[1][2], out[1][3]);
}

}  // namespace guest
