// The list of tests, in the order they run. Platform tests always belong to `tests=all`; a PCI
// or virtio test joins `all` only when its device is present, and its PASS/FAIL line carries the
// virtio face it used (`PASS virtio-blk-rw modern`).
#include "bench.h"
#include "tests.h"
#include "virtio_pci.h"

namespace guest {

namespace {
struct Entry {
  TestCase test;
  bool (*present)();  // nullptr: always part of `all`
  bool virtio;        // the line names the virtio face
};
const Entry kTests[] = {
    {{"serial", test_serial}, nullptr, false},
    {{"memory", test_memory}, nullptr, false},
    {{"timer", test_timer}, nullptr, false},
    {{"smp", test_smp}, nullptr, false},
    {{"cmdline", test_cmdline}, nullptr, false},
    {{"pci-enum", test_pci_enum}, pci_present, false},
    {{"virtio-blk-rw", test_virtio_blk_rw}, blk_writable_present, true},
    {{"virtio-blk-ro", test_virtio_blk_ro}, blk_ro_present, true},
    {{"virtio-blk-getid", test_virtio_blk_getid}, blk_present, true},
    {{"virtio-console", test_virtio_console}, console_present, true},
    {{"virtio-rng", test_virtio_rng}, rng_present, true},
    {{"virtio-msix", test_virtio_msix}, msix_device_present, true},
    {{"virtio-intx", test_virtio_intx}, blk_present, true},
    {{"virtio-reset", test_virtio_reset}, blk_writable_present, true},
    {{"virtio-net-ping", test_virtio_net_ping}, net_peer_present, true},
    {{"virtio-net-burst", test_virtio_net_burst}, net_present, true},
    {{"virtio-balloon", test_virtio_balloon}, balloon_present, true},
    {{"virtio-fs", test_virtio_fs}, fs_present, true},
    {{"crash", test_crash}, explicit_only, false},
    {{"sleep", test_sleep}, explicit_only, false},
    {{"serial-wait", test_serial_wait}, explicit_only, false},
    {{"virtio-balloon-follow", test_virtio_balloon_follow}, explicit_only, true},
    // Before idle: a test that counts its device's work, then idle holding the VM up.
    {{"virtio-blk-read-loop", test_virtio_blk_read_loop}, explicit_only, true},
    {{"idle", test_idle}, explicit_only, true},
    {{"virtio-blk-ack-stream", test_virtio_blk_ack_stream}, explicit_only, true},
    {{"virtio-blk-mq", test_virtio_blk_mq}, explicit_only, true},
    {{"virtio-blk-medium-change", test_virtio_blk_medium_change}, explicit_only, true},
    {{"reboot", test_reboot}, explicit_only, false},
    {{"i8042-ctrl-alt-del", test_i8042_ctrl_alt_del}, explicit_only, false},
    {{"pvpanic", test_pvpanic}, explicit_only, false},
    {{"rtc", test_rtc}, explicit_only, false},
    {{"virtio-console-ports", test_virtio_console_ports}, explicit_only, true},
    {{"bench-kick", test_bench_kick}, explicit_only, true},
    {{"bench-blk", test_bench_blk}, explicit_only, true},
    {{"bench-irq", test_bench_irq}, explicit_only, true},
    {{"bench-exit", test_bench_exit}, explicit_only, false},
};
}  // namespace

size_t test_count() {
  return sizeof kTests / sizeof kTests[0];
}
const TestCase& test_at(size_t i) {
  return kTests[i].test;
}
const char* test_suffix(size_t i) {
  return kTests[i].virtio ? face_name(virtio_face()) : nullptr;
}
bool test_in_all(size_t i) {
  return kTests[i].present == nullptr || kTests[i].present();
}
bool test_exists(const char* name) {
  for (const auto& t : kTests) {
    if (strlen(t.test.name) == strlen(name) && memcmp(t.test.name, name, strlen(name)) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace guest
