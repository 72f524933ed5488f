// virtio-fs (virtio 1.2 section 5.11) as the smallest FUSE client that shows the file system
// works end to end: the device's tag (5.11.4), then on the request queue (queue 1; queue 0 is
// hiprio) FUSE_INIT, FUSE_LOOKUP of `fs.file=NAME` in the root, FUSE_OPEN and FUSE_READ, whose
// bytes must be `fs.expect=TEXT`; then, with `fs.write=NAME`, FUSE_CREATE and FUSE_WRITE of
// "written-by-the-test-guest" and FUSE_RELEASE, for the host to find in the shared directory.
// The FUSE messages are the kernel's protocol (include/uapi/linux/fuse.h, 7.31), defined here
// because the guest is freestanding. Modern face only: virtio-fs has no legacy interface.
#include "tests.h"
#include "virtio_device.h"

namespace guest {

namespace {

constexpr uint16_t kVirtioTypeFs = 26;
constexpr uint16_t kRequestQueue = 1;
constexpr uint32_t kInit = 26, kLookup = 1, kOpen = 14, kRead = 15, kCreate = 35, kWrite = 16,
                   kRelease = 18;
constexpr uint64_t kRootNode = 1;

struct InHeader {
  uint32_t len, opcode;
  uint64_t unique, nodeid;
  uint32_t uid, gid, pid, padding;
};
struct OutHeader {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};
struct InitIn {  // with the 7.36 tail (flags2, unused) zeroed, whatever the daemon expects
  uint32_t major, minor, max_readahead, flags, flags2, unused[11];
};
struct EntryOut {  // fuse_entry_out: the node id, then validity and fuse_attr (88 bytes)
  uint64_t nodeid, generation, entry_valid, attr_valid;
  uint32_t entry_valid_nsec, attr_valid_nsec;
  uint64_t ino, size, blocks, atime, mtime, ctime;
  uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};
struct OpenIn {
  uint32_t flags, open_flags;
};
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags, padding;
};
struct ReadIn {  // also fuse_write_in's layout
  uint64_t fh, offset;
  uint32_t size, rw_flags;
  uint64_t lock_owner;
  uint32_t flags, padding;
};
struct CreateIn {
  uint32_t flags, mode, umask, open_flags;
};
struct ReleaseIn {
  uint64_t fh;
  uint32_t flags, release_flags;
  uint64_t lock_owner;
};
static_assert(sizeof(InHeader) == 40 && sizeof(OutHeader) == 16 && sizeof(EntryOut) == 128);

uint8_t* g_buf = nullptr;  // two pages: the request, then the answer
uint64_t g_unique = 0;

// One request: header + `args` (+ `name`, NUL-terminated) readable, `out_len` bytes writable
// after the out header. Returns the answer's payload length, or -1 (the test failed).
long request(VirtioDevice* d, uint32_t opcode, uint64_t node, const void* args, uint32_t args_len,
             const char* name, uint32_t out_len, TestResult& r) {
  uint8_t* in = g_buf;
  uint8_t* out = g_buf + 4096;
  uint32_t name_len = name != nullptr ? static_cast<uint32_t>(strlen(name) + 1) : 0;
  InHeader h{};
  h.len = static_cast<uint32_t>(sizeof h + args_len + name_len);
  h.opcode = opcode;
  h.unique = ++g_unique;
  h.nodeid = node;
  memcpy(in, &h, sizeof h);
  if (args_len) memcpy(in + sizeof h, args, args_len);
  if (name_len) memcpy(in + sizeof h + args_len, name, name_len);
  memset(out, 0, 4096);
  VqSeg segs[2] = {
      {reinterpret_cast<uint64_t>(in), h.len, false},
      {reinterpret_cast<uint64_t>(out), static_cast<uint32_t>(sizeof(OutHeader) + out_len), true}};
  if (d->queue(kRequestQueue).add(segs, 2, false) < 0) {
    return fail(r, "%s: request queue full", d->name()), -1;
  }
  d->kick(kRequestQueue);
  uint16_t head;
  uint32_t len;
  if (!d->wait_used(kRequestQueue, &head, &len, VirtioDevice::kTimeoutMs, r)) return -1;
  OutHeader o;
  memcpy(&o, out, sizeof o);
  if (len < sizeof o || o.len < sizeof o || o.len > len || o.unique != h.unique) {
    return fail(r, "%s: opcode %u answered with %u bytes (header says %u, unique %lu)", d->name(),
                opcode, len, o.len, o.unique),
           -1;
  }
  if (o.error != 0) {
    return fail(r, "%s: opcode %u failed with errno %d", d->name(), opcode, -o.error), -1;
  }
  return static_cast<long>(o.len - sizeof o);
}

}  // namespace

bool fs_present() {
  return VirtioDevice::find(kVirtioTypeFs) != nullptr;
}

void test_virtio_fs(TestResult& r) {
  VirtioDevice* d = VirtioDevice::find(kVirtioTypeFs);
  if (d == nullptr) return void(fail(r, "no virtio-fs device"));
  if (g_buf == nullptr) g_buf = static_cast<uint8_t*>(alloc_pages(2));
  if (g_buf == nullptr) return void(fail(r, "out of pages"));
  DeviceSession session{d};
  if (!d->begin(0, true, r)) return;
  // 5.11.4: tag[36], NUL-padded, then num_request_queues.
  char tag[37] = {};
  for (int i = 0; i < 36; ++i) tag[i] = static_cast<char>(d->transport().cfg8(i));
  uint32_t request_queues = d->transport().cfg32(36);
  char want_tag[37] = {};
  if (cmdline_get("fs.tag", want_tag, sizeof want_tag) && strlen(want_tag) != strlen(tag)) {
    return void(fail(r, "%s: tag '%s', expected '%s'", d->name(), tag, want_tag));
  }
  if (request_queues < 1) return void(fail(r, "%s: num_request_queues is 0", d->name()));
  if (!d->setup_queues(2, 64, 0, r) || !d->driver_ok(r)) return;

  InitIn init{};
  init.major = 7;
  init.minor = 31;
  init.max_readahead = 65536;
  if (request(d, kInit, 0, &init, sizeof init, nullptr, 64, r) < 8) {
    if (r.ok) fail(r, "%s: FUSE_INIT answer too short", d->name());
    return;
  }
  uint32_t major;
  memcpy(&major, g_buf + 4096 + sizeof(OutHeader), 4);
  if (major != 7) return void(fail(r, "%s: FUSE major version %u", d->name(), major));

  char file[64] = {}, expect[128] = {};
  if (cmdline_get("fs.file", file, sizeof file) &&
      cmdline_get("fs.expect", expect, sizeof expect)) {
    if (request(d, kLookup, kRootNode, nullptr, 0, file, sizeof(EntryOut), r) < 0) return;
    EntryOut e;
    memcpy(&e, g_buf + 4096 + sizeof(OutHeader), sizeof e);
    OpenIn oi{0, 0};  // O_RDONLY
    if (request(d, kOpen, e.nodeid, &oi, sizeof oi, nullptr, sizeof(OpenOut), r) < 0) return;
    OpenOut oo;
    memcpy(&oo, g_buf + 4096 + sizeof(OutHeader), sizeof oo);
    ReadIn ri{};
    ri.fh = oo.fh;
    ri.size = 1024;
    long n = request(d, kRead, e.nodeid, &ri, sizeof ri, nullptr, 1024, r);
    if (n < 0) return;
    const char* got = reinterpret_cast<const char*>(g_buf + 4096 + sizeof(OutHeader));
    size_t want = strlen(expect);
    // The file may end in a newline the command-line token cannot carry.
    if (static_cast<size_t>(n) < want || memcmp(got, expect, want) != 0) {
      return void(fail(r, "%s: read %ld bytes of %s, not '%s'", d->name(), n, file, expect));
    }
    ReleaseIn rel{oo.fh, 0, 0, 0};
    if (request(d, kRelease, e.nodeid, &rel, sizeof rel, nullptr, 0, r) < 0) return;
    printf("virtio-fs: read '%s' from %s (size %lu)\n", expect, file, e.size);
  }
  char write_name[64] = {};
  if (cmdline_get("fs.write", write_name, sizeof write_name)) {
    CreateIn ci{0101 /* O_WRONLY|O_CREAT */, 0100644, 0, 0};
    if (request(d, kCreate, kRootNode, &ci, sizeof ci, write_name,
                sizeof(EntryOut) + sizeof(OpenOut), r) < 0) {
      return;
    }
    EntryOut e;
    OpenOut oo;
    memcpy(&e, g_buf + 4096 + sizeof(OutHeader), sizeof e);
    memcpy(&oo, g_buf + 4096 + sizeof(OutHeader) + sizeof e, sizeof oo);
    static const char kText[] = "written-by-the-test-guest";
    uint8_t args[sizeof(ReadIn) + sizeof kText - 1];
    ReadIn wi{};
    wi.fh = oo.fh;
    wi.size = sizeof kText - 1;
    memcpy(args, &wi, sizeof wi);
    memcpy(args + sizeof wi, kText, sizeof kText - 1);
    if (request(d, kWrite, e.nodeid, args, sizeof args, nullptr, 8, r) < 0) return;
    uint32_t written;
    memcpy(&written, g_buf + 4096 + sizeof(OutHeader), 4);
    if (written != sizeof kText - 1) {
      return void(
          fail(r, "%s: FUSE_WRITE wrote %u of %zu bytes", d->name(), written, sizeof kText - 1));
    }
    ReleaseIn rel{oo.fh, 0, 0, 0};
    if (request(d, kRelease, e.nodeid, &rel, sizeof rel, nullptr, 0, r) < 0) return;
    printf("virtio-fs: wrote %s\n", write_name);
  }
}

}  // namespace guest
