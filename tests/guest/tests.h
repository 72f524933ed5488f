// The test registry: every test the guest can run, by name.
#pragma once

#include "guest.h"

namespace guest {

size_t test_count();
const TestCase& test_at(size_t i);
const char* test_suffix(size_t i);  // e.g. the virtio face ("legacy"/"modern"), or nullptr
bool test_exists(const char* name);
// Whether `tests=all` runs test i: always for the platform tests; for the PCI and virtio tests
// only when the hardware they need is present (asked for by name, they FAIL without it).
bool test_in_all(size_t i);

// Whole-VM control tests, run only when named (tests_control.cpp).
void test_crash(TestResult& r);
void test_sleep(TestResult& r);
void test_idle(TestResult& r);
void test_serial_wait(TestResult& r);
void test_reboot(TestResult& r);
void test_pvpanic(TestResult& r);
// A multiport virtio-console driven as Linux does, writing ports.write=
// (tests_virtio_console_ports.cpp).
void test_virtio_console_ports(TestResult& r);
bool explicit_only();

// Basic platform tests (tests_basic.cpp).
void test_serial(TestResult& r);
void test_memory(TestResult& r);
void test_timer(TestResult& r);
void test_smp(TestResult& r);
void test_cmdline(TestResult& r);

// The CMOS real-time clock (tests_rtc.cpp), run only when named.
void test_rtc(TestResult& r);

// PCI (tests_pci.cpp).
void test_pci_enum(TestResult& r);
bool pci_present();

// virtio-blk (tests_virtio_blk.cpp).
void test_virtio_blk_rw(TestResult& r);
void test_virtio_blk_ro(TestResult& r);
void test_virtio_blk_getid(TestResult& r);
void test_virtio_blk_ack_stream(TestResult& r);
void test_virtio_blk_read_loop(TestResult& r);
void test_virtio_blk_medium_change(TestResult& r);
void test_virtio_blk_mq(TestResult& r);
void test_virtio_reset(TestResult& r);
bool blk_writable_present();
bool blk_ro_present();
bool blk_present();

// virtio-console and virtio-rng (tests_virtio.cpp).
void test_virtio_console(TestResult& r);
void test_virtio_rng(TestResult& r);
bool console_present();
bool rng_present();

// Interrupt delivery (tests_virtio_irq.cpp).
void test_virtio_msix(TestResult& r);
void test_virtio_intx(TestResult& r);
bool msix_device_present();

// virtio-net (tests_net.cpp): ping joins `all` with a net device and net.ip/net.peer given.
void test_virtio_net_ping(TestResult& r);
void test_virtio_net_burst(TestResult& r);
bool net_present();
bool net_peer_present();

// virtio-fs through a vhost-user backend (tests_virtio_fs.cpp).
void test_virtio_fs(TestResult& r);
bool fs_present();

// virtio-balloon (tests_balloon.cpp).
void test_virtio_balloon(TestResult& r);
void test_virtio_balloon_follow(TestResult& r);
void test_i8042_ctrl_alt_del(TestResult& r);
bool balloon_present();

}  // namespace guest
