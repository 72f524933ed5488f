// virtio-console-ports (run only when named): a multiport virtio-console driven as Linux's
// virtio_console driver drives it (virtio 1.2 sections 5.3.2, 5.3.4, 5.3.6.2), so that the host
// side of a guest that reports through named ports (ember exec's guest init) can be tested
// without Linux:
//   - VIRTIO_CONSOLE_F_MULTIPORT negotiated, max_nr_ports read from the configuration space, every
//     queue set up: port 0 receiveq/transmitq 0/1, control receiveq/transmitq 2/3, port N >= 1 at
//     2N+2 / 2N+3;
//   - control receive buffers supplied, DEVICE_READY(1) sent; each DEVICE_ADD answered with
//     PORT_READY(1); PORT_NAME, CONSOLE_PORT, PORT_OPEN and DEVICE_REMOVE taken note of; anything
//     else (a driver-to-device event, an unknown one, a port beyond max_nr_ports or not added, a
//     second name, a malformed name) FAILs, as the device should never send it;
//   - for each `NAME:TEXT` of `ports.write=` (comma separated; TEXT with %XX escapes, repeated
//     `ports.repeat=` times): PORT_OPEN(1) for the port, TEXT on its transmitq, used within the
//     timeout, then PORT_OPEN(0) as the driver sends when the application closes the port.
// Every wait is bounded; a port never named FAILs with the names that were seen.
#include "tests.h"
#include "virtio_device.h"

namespace guest {

namespace {

// 5.3.6.2 struct virtio_console_control.event.
constexpr uint16_t kDeviceReady = 0, kDeviceAdd = 1, kDeviceRemove = 2, kPortReady = 3,
                   kConsolePort = 4, kResize = 5, kPortOpen = 6, kPortName = 7;
constexpr unsigned kFeatMultiport = 1;
constexpr uint32_t kMaxPorts = 32;  // the queues of 32 ports are VirtioPci::kMaxQueues
constexpr uint16_t kMaxQueues = 2 * (kMaxPorts + 1);
static_assert(kMaxQueues <= VirtioPci::kMaxQueues);
constexpr size_t kMaxName = 64;
constexpr uint16_t kCtrlBufs = 16;
constexpr uint32_t kCtrlBufLen = 256;  // 8-byte header + a name (ember's are at most 64 bytes)
constexpr uint32_t kQuietMs = 1000;    // no control message for this long: the device is done
constexpr size_t kTextPages = 16;      // the largest TEXT (after ports.repeat): 64 KiB
constexpr size_t kSpecLen = 1024;

struct Port {
  bool added = false, removed = false, console = false, host_open = false, named = false;
  char name[kMaxName + 1] = {};
};

struct Driver {
  VirtioDevice* d = nullptr;
  uint32_t max_ports = 0;
  uint16_t nq = 0;
  Port ports[kMaxPorts];
  uint8_t* rx_buf_of[Virtqueue::kMaxSize] = {};  // control receive buffer by descriptor head
  uint8_t* ctrl_tx = nullptr;
  uint8_t* text = nullptr;
};

Virtqueue g_vq[kMaxQueues];
constinit Driver g_drv;
uint8_t* g_ctrl_rx = nullptr;  // kCtrlBufs x kCtrlBufLen, allocated once
uint8_t* g_ctrl_tx = nullptr;
uint8_t* g_text = nullptr;

uint16_t rx_queue(uint32_t port) {
  return static_cast<uint16_t>(port == 0 ? 0 : 2 * port + 2);
}
uint16_t tx_queue(uint32_t port) {
  return static_cast<uint16_t>(rx_queue(port) + 1);
}
constexpr uint16_t kCtrlRx = 2, kCtrlTx = 3;

uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

void kick(Driver& drv, uint16_t q) {
  if (g_vq[q].kick_needed()) drv.d->transport().notify(q);
}

// 1: a used element within `ms`; 0: none; -1: the device returned something invalid (in r).
int wait_used(Driver& drv, uint16_t q, uint16_t* head, uint32_t* len, uint32_t ms, TestResult& r) {
  char why[96];
  uint64_t end = rdtsc() + static_cast<uint64_t>(ms) * tsc_khz();
  for (;;) {
    int rc = g_vq[q].pop(head, len, why, sizeof why);
    if (rc == 1) return 1;
    if (rc < 0) return fail(r, "%s queue %u: %s", drv.d->name(), q, why), -1;
    if (rdtsc() > end) return 0;
    pause();
  }
}

bool post_ctrl_rx(Driver& drv, uint8_t* buf, TestResult& r) {
  VqSeg s{reinterpret_cast<uint64_t>(buf), kCtrlBufLen, true};
  int head = g_vq[kCtrlRx].add(&s, 1, false);
  if (head < 0) return fail(r, "%s: control receiveq full", drv.d->name());
  drv.rx_buf_of[head] = buf;
  return true;
}

// One control message to the device, used within the timeout.
bool send_control(Driver& drv, uint32_t id, uint16_t event, uint16_t value, TestResult& r) {
  uint8_t* m = drv.ctrl_tx;
  m[0] = static_cast<uint8_t>(id);
  m[1] = static_cast<uint8_t>(id >> 8);
  m[2] = static_cast<uint8_t>(id >> 16);
  m[3] = static_cast<uint8_t>(id >> 24);
  m[4] = static_cast<uint8_t>(event);
  m[5] = static_cast<uint8_t>(event >> 8);
  m[6] = static_cast<uint8_t>(value);
  m[7] = static_cast<uint8_t>(value >> 8);
  VqSeg s{reinterpret_cast<uint64_t>(m), 8, false};
  if (g_vq[kCtrlTx].add(&s, 1, false) < 0) {
    return fail(r, "%s: control transmitq full", drv.d->name());
  }
  kick(drv, kCtrlTx);
  uint16_t head;
  uint32_t len;
  int rc = wait_used(drv, kCtrlTx, &head, &len, VirtioDevice::kTimeoutMs, r);
  if (rc < 0) return false;
  if (rc == 0) {
    return fail(r, "%s: control message (port %u, event %u, value %u) not used in %u ms",
                drv.d->name(), id, event, value, VirtioDevice::kTimeoutMs);
  }
  return true;
}

bool printable_name(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x21 || p[i] > 0x7e) return false;
  }
  return true;
}

// One message the device sent on the control receiveq, acted on as the driver would.
bool handle_control(Driver& drv, const uint8_t* m, uint32_t len, TestResult& r) {
  const char* dn = drv.d->name();
  if (len < 8) return fail(r, "%s: control message of %u bytes, shorter than its header", dn, len);
  uint32_t id = le32(m);
  uint16_t event = le16(m + 4), value = le16(m + 6);
  if (event == kDeviceReady || event == kPortReady || event > kPortName) {
    return fail(r,
                "%s: the device sent control event %u (port %u, value %u), which only a driver "
                "sends or which does not exist",
                dn, event, id, value);
  }
  if (id >= drv.max_ports) {
    return fail(r, "%s: control event %u for port %u, beyond max_nr_ports %u", dn, event, id,
                drv.max_ports);
  }
  Port& p = drv.ports[id];
  if (event == kDeviceAdd) {
    if (p.added && !p.removed) return fail(r, "%s: DEVICE_ADD twice for port %u", dn, id);
    p = Port{};
    p.added = true;
    return send_control(drv, id, kPortReady, 1, r);
  }
  if (!p.added || p.removed) {
    return fail(r, "%s: control event %u for port %u, which the device has not added", dn, event,
                id);
  }
  switch (event) {
    case kDeviceRemove:
      p.removed = true;
      return true;
    case kConsolePort:
      p.console = true;
      return true;
    case kResize:
      if (!p.console) return fail(r, "%s: RESIZE for port %u, not a console port", dn, id);
      return true;
    case kPortOpen:
      p.host_open = value != 0;
      return true;
    default:  // kPortName
      break;
  }
  size_t n = len - 8;
  if (p.named) return fail(r, "%s: a second PORT_NAME for port %u", dn, id);
  if (n == 0 || n > kMaxName || !printable_name(m + 8, n)) {
    return fail(r, "%s: PORT_NAME for port %u of %zu bytes, not 1-%zu printable characters", dn, id,
                n, kMaxName);
  }
  memcpy(p.name, m + 8, n);
  p.name[n] = 0;
  p.named = true;
  return true;
}

// The port named `name` (length n), or -1.
int port_named(const Driver& drv, const char* name, size_t n) {
  for (uint32_t i = 0; i < drv.max_ports; ++i) {
    const Port& p = drv.ports[i];
    if (p.added && !p.removed && p.named && strlen(p.name) == n && memcmp(p.name, name, n) == 0) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// The `NAME:TEXT` items of ports.write, one after another.
struct Item {
  const char* name;
  size_t name_len;
  const char* text;  // still %-escaped
  size_t text_len;
};
bool next_item(const char*& s, Item* item) {
  while (*s == ',') ++s;
  if (*s == 0) return false;
  const char* start = s;
  while (*s != 0 && *s != ',') ++s;
  const char* colon = start;
  while (colon < s && *colon != ':') ++colon;
  item->name = start;
  item->name_len = static_cast<size_t>(colon - start);
  item->text = colon < s ? colon + 1 : s;
  item->text_len = colon < s ? static_cast<size_t>(s - colon - 1) : 0;
  return true;
}

// The item's NAME as a string (cut at kMaxName characters) in `out`.
const char* item_name(const Item& item, char (&out)[kMaxName + 1]) {
  size_t n = item.name_len < kMaxName ? item.name_len : kMaxName;
  memcpy(out, item.name, n);
  out[n] = 0;
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes of `in` into `out` (room for `cap` bytes); the length, or -1.
long decode(const char* in, size_t n, uint8_t* out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = static_cast<uint8_t>(in[i]);
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = static_cast<uint8_t>(hi << 4 | lo);
      i += 2;
    }
    if (o == cap) return -1;
    out[o++] = c;
  }
  return static_cast<long>(o);
}

bool alloc_buffers(TestResult& r) {
  if (g_ctrl_rx == nullptr) g_ctrl_rx = static_cast<uint8_t*>(alloc_pages(1));
  if (g_ctrl_tx == nullptr) g_ctrl_tx = static_cast<uint8_t*>(alloc_pages(1));
  if (g_text == nullptr) g_text = static_cast<uint8_t*>(alloc_pages_uninit(kTextPages));
  return (g_ctrl_rx != nullptr && g_ctrl_tx != nullptr && g_text != nullptr) ||
         fail(r, "out of pages");
}

// 5.3.2 / 4.1.5.1.3: every queue of every port, polled (no MSI-X vector on any of them).
bool setup_all_queues(Driver& drv, TestResult& r) {
  VirtioPci& t = drv.d->transport();
  bool legacy = t.face() == VirtioFace::Legacy;
  uint16_t have = t.num_queues();
  if (have < drv.nq) {
    return fail(r, "%s: %u queues for max_nr_ports %u, %u needed", drv.d->name(), have,
                drv.max_ports, drv.nq);
  }
  if (t.msix_enabled() && t.config_vector(VirtioPci::kNoVector) != VirtioPci::kNoVector) {
    return fail(r, "%s: config vector does not read back NO_VECTOR", drv.d->name());
  }
  char why[96];
  for (uint16_t q = 0; q < drv.nq; ++q) {
    uint16_t max = t.queue_max_size(q);
    if (max == 0) return fail(r, "%s: queue %u has size 0", drv.d->name(), q);
    uint16_t size = max;
    if (!legacy) {
      uint16_t cap = max < 32 ? max : 32;
      for (size = 1; static_cast<uint32_t>(size) * 2 <= cap;)
        size = static_cast<uint16_t>(size * 2);
    }
    if (!g_vq[q].init(size, legacy, 0, why, sizeof why)) {
      return fail(r, "%s: queue %u: %s", drv.d->name(), q, why);
    }
    if (!t.setup_queue(q, g_vq[q], VirtioPci::kNoVector, why, sizeof why)) {
      return fail(r, "%s: %s", drv.d->name(), why);
    }
  }
  return true;
}

// Takes the device's control messages until every name in `spec` is a port's (true), the device
// has been quiet for kQuietMs, or a message is wrong (false with a reason).
bool collect_ports(Driver& drv, const char* spec, TestResult& r) {
  uint64_t deadline = rdtsc() + static_cast<uint64_t>(4 * VirtioDevice::kTimeoutMs) * tsc_khz();
  for (;;) {
    bool all = true;
    const char* s = spec;
    Item item;
    while (next_item(s, &item)) all = all && port_named(drv, item.name, item.name_len) >= 0;
    if (all && *spec != 0) return true;
    uint16_t head;
    uint32_t len;
    int rc = wait_used(drv, kCtrlRx, &head, &len, kQuietMs, r);
    if (rc < 0) return false;
    if (rc == 0) return true;  // quiet: the caller says what is missing
    uint8_t* buf = drv.rx_buf_of[head];
    if (buf == nullptr || len > kCtrlBufLen) {
      return fail(r, "%s: control receiveq used head %u len %u", drv.d->name(), head, len);
    }
    drv.rx_buf_of[head] = nullptr;
    if (!handle_control(drv, buf, len, r)) return false;
    if (!post_ctrl_rx(drv, buf, r)) return false;
    kick(drv, kCtrlRx);
    if (rdtsc() > deadline) {
      return fail(r, "%s: control messages still arriving after %u ms", drv.d->name(),
                  4 * VirtioDevice::kTimeoutMs);
    }
  }
}

// The control messages the device has sent by now, without waiting for more.
bool drain_control(Driver& drv, TestResult& r) {
  for (;;) {
    uint16_t head;
    uint32_t len;
    int rc = wait_used(drv, kCtrlRx, &head, &len, 0, r);
    if (rc <= 0) return rc == 0;
    uint8_t* buf = drv.rx_buf_of[head];
    if (buf == nullptr || len > kCtrlBufLen) {
      return fail(r, "%s: control receiveq used head %u len %u", drv.d->name(), head, len);
    }
    drv.rx_buf_of[head] = nullptr;
    if (!handle_control(drv, buf, len, r) || !post_ctrl_rx(drv, buf, r)) return false;
    kick(drv, kCtrlRx);
  }
}

// An item's TEXT, decoded and repeated into drv.text; its length in *total.
bool text_of(Driver& drv, const Item& item, uint64_t repeat, size_t* total, TestResult& r) {
  constexpr size_t kCap = kTextPages * 4096;
  char name[kMaxName + 1];
  long one = decode(item.text, item.text_len, drv.text, kCap);
  if (one < 0) {
    return fail(r, "ports.write text for %s: a bad %%XX escape, or longer than %zu bytes",
                item_name(item, name), kCap);
  }
  size_t len1 = static_cast<size_t>(one);
  if (len1 != 0 && repeat > kCap / len1) {
    return fail(r, "ports.write text for %s: %zu bytes x %lu is more than %zu",
                item_name(item, name), len1, repeat, kCap);
  }
  *total = len1 * static_cast<size_t>(repeat);
  for (size_t k = 1; k < repeat && len1 != 0; ++k) memcpy(drv.text + k * len1, drv.text, len1);
  return true;
}

// As the driver does for an application's write: PORT_OPEN(1), the bytes on the port's
// transmitq, used within the timeout, PORT_OPEN(0) when it closes the port.
bool write_port(Driver& drv, uint32_t p, size_t total, TestResult& r) {
  if (!send_control(drv, p, kPortOpen, 1, r)) return false;
  if (total > 0) {
    VqSeg seg{reinterpret_cast<uint64_t>(drv.text), static_cast<uint32_t>(total), false};
    if (g_vq[tx_queue(p)].add(&seg, 1, false) < 0) {
      return fail(r, "%s: transmitq of port %u full", drv.d->name(), p);
    }
    kick(drv, tx_queue(p));
    uint16_t head;
    uint32_t len;
    int rc = wait_used(drv, tx_queue(p), &head, &len, VirtioDevice::kTimeoutMs, r);
    if (rc < 0) return false;
    if (rc == 0) {
      return fail(r, "%s: %zu bytes on port %u (%s) not used in %u ms", drv.d->name(), total, p,
                  drv.ports[p].name, VirtioDevice::kTimeoutMs);
    }
  }
  return send_control(drv, p, kPortOpen, 0, r);
}

void list_ports(const Driver& drv, char* out, size_t n) {
  size_t o = 0;
  out[0] = 0;
  for (uint32_t i = 0; i < drv.max_ports && o + 1 < n; ++i) {
    const Port& p = drv.ports[i];
    if (!p.added || p.removed) continue;
    int w = snprintf(out + o, n - o, "%s%u=%s%s", o == 0 ? "" : " ", i,
                     p.named ? p.name : "(no name)", p.console ? "(console)" : "");
    if (w < 0) break;
    o += static_cast<size_t>(w) < n - o ? static_cast<size_t>(w) : n - o - 1;
  }
  if (o == 0) snprintf(out, n, "none");
}

}  // namespace

void test_virtio_console_ports(TestResult& r) {
  Driver& drv = g_drv;
  memset(&drv, 0, sizeof drv);  // Driver{} would be a 10 KiB temporary on the stack
  drv.d = VirtioDevice::find(kVirtioTypeConsole);
  if (drv.d == nullptr) return void(fail(r, "no virtio-console device"));
  static char spec[kSpecLen];
  spec[0] = 0;
  if (cmdline_get("ports.write", spec, sizeof spec) && strlen(spec) == sizeof spec - 1) {
    return void(fail(r, "ports.write= longer than %zu bytes", sizeof spec - 2));
  }
  uint64_t repeat = cmdline_number("ports.repeat", 1);
  if (repeat == 0) return void(fail(r, "ports.repeat=0"));
  if (!alloc_buffers(r)) return;
  drv.ctrl_tx = g_ctrl_tx;
  drv.text = g_text;
  VirtioDevice* d = drv.d;
  DeviceSession session{d};
  if (!d->begin(1ULL << kFeatMultiport, true, r)) return;
  if (!d->has(kFeatMultiport)) {
    return void(fail(r, "%s: VIRTIO_CONSOLE_F_MULTIPORT not offered (features %lx)", d->name(),
                     d->offered()));
  }
  // 5.3.4: max_nr_ports at offset 4, valid with MULTIPORT.
  drv.max_ports = d->transport().cfg32(4);
  if (drv.max_ports == 0 || drv.max_ports > kMaxPorts) {
    return void(
        fail(r, "%s: max_nr_ports %u (this driver: 1-%u)", d->name(), drv.max_ports, kMaxPorts));
  }
  drv.nq = static_cast<uint16_t>(2 * (drv.max_ports + 1));
  if (!setup_all_queues(drv, r) || !d->driver_ok(r)) return;
  // 5.3.6.1: the control receiveq supplied before DEVICE_READY.
  for (uint16_t i = 0; i < kCtrlBufs; ++i) {
    if (!post_ctrl_rx(drv, g_ctrl_rx + i * kCtrlBufLen, r)) return;
  }
  kick(drv, kCtrlRx);
  if (!send_control(drv, 0, kDeviceReady, 1, r)) return;
  if (!collect_ports(drv, spec, r)) return;
  char seen[256];
  list_ports(drv, seen, sizeof seen);
  printf("virtio-console-ports: %s, max_nr_ports %u, ports %s\n", d->name(), drv.max_ports, seen);
  // Every item checked before anything is written: a wrong one fails with no port written.
  for (int pass = 0; pass < 2; ++pass) {
    const char* s = spec;
    Item item;
    while (next_item(s, &item)) {
      int port = port_named(drv, item.name, item.name_len);
      if (port < 0) {
        char name[kMaxName + 1];
        return void(fail(r, "no port named \"%s\" (ports: %s)", item_name(item, name), seen));
      }
      uint32_t p = static_cast<uint32_t>(port);
      size_t total = 0;
      if (!text_of(drv, item, repeat, &total, r)) return;
      if (pass == 0) continue;
      if (!drain_control(drv, r) || !write_port(drv, p, total, r)) return;
      printf("virtio-console-ports: wrote %zu bytes to %s (port %u, host side %s)\n", total,
             drv.ports[p].name, p, drv.ports[p].host_open ? "open" : "closed");
    }
  }
}

}  // namespace guest
