// The machine a snapshot saves: encoded and decoded whole, merged with the restoring command
// line's host settings and overrides, and the refusals (a virtio-fs machine, an override of
// another count or read-only setting, tampered values).
#include <gtest/gtest.h>

#include "vmm/snapshot/SavedConfig.h"

namespace ember::vmm {
namespace {

MachineConfig sample() {
  MachineConfig c;
  c.kernel = "/boot/vmlinuz";
  c.cmdline = "console=ttyS0";
  c.memory = 512ULL << 20;
  c.cpus = 2;
  c.disks = {
      DiskConfig{"/img/root.img", false, "root", true, devices::BlockEngineKind::IoUring, 2, false},
      DiskConfig{"/img/data.img", true, "", false, devices::BlockEngineKind::LibAio, 0, true}};
  c.console = ConsoleKind::Virtio;
  c.serial_ports = {SerialPortConfig{"log", SerialPortConfig::Kind::File, "/tmp/log", 4096}};
  c.rng = true;
  c.nets = {NetConfig{"tap0", std::nullopt, 1400, true, false}};
  c.balloon = 64ULL << 20;
  c.balloon_deflate_on_oom = true;
  c.balloon_stats_interval_s = 5;
  c.pvpanic = true;
  c.poll_us = 50;
  return c;
}

MachineConfig roundTrip(const MachineConfig& c) {
  StateWriter w;
  SavedConfig::encode(c, w);
  StateReader r(w.data(), "test");
  MachineConfig out = SavedConfig::decode(r);
  EXPECT_TRUE(r.finish().ok()) << r.finish().error().message;
  return out;
}

TEST(SavedConfig, EveryGuestVisibleSettingRoundTrips) {
  MachineConfig c = sample();
  MachineConfig d = roundTrip(c);
  EXPECT_EQ(d.kernel, c.kernel);
  EXPECT_EQ(d.cmdline, c.cmdline);
  EXPECT_EQ(d.memory, c.memory);
  EXPECT_EQ(d.cpus, c.cpus);
  ASSERT_EQ(d.disks.size(), 2u);
  EXPECT_EQ(d.disks[0].path, "/img/root.img");
  EXPECT_EQ(d.disks[0].serial, "root");
  EXPECT_EQ(d.disks[0].aio, devices::BlockEngineKind::IoUring);
  EXPECT_EQ(d.disks[0].num_queues, 2);
  EXPECT_FALSE(d.disks[0].poll);
  EXPECT_TRUE(d.disks[1].read_only);
  EXPECT_FALSE(d.disks[1].ioeventfd);
  EXPECT_EQ(d.console, ConsoleKind::Virtio);
  ASSERT_EQ(d.serial_ports.size(), 1u);
  EXPECT_EQ(d.serial_ports[0].path, "/tmp/log");
  EXPECT_EQ(d.serial_ports[0].limit, 4096u);
  EXPECT_TRUE(d.rng);
  ASSERT_EQ(d.nets.size(), 1u);
  EXPECT_EQ(d.nets[0].mtu, 1400);
  EXPECT_FALSE(d.nets[0].poll);
  // The MAC the guest saw, resolved from the tap name: an override of the tap keeps it.
  EXPECT_EQ(d.nets[0].mac, c.nets[0].guestMac());
  EXPECT_EQ(d.balloon, c.balloon);
  EXPECT_TRUE(d.balloon_deflate_on_oom);
  EXPECT_EQ(d.balloon_stats_interval_s, 5u);
  EXPECT_TRUE(d.pvpanic);
  EXPECT_EQ(d.poll_us, 50u);
}

TEST(SavedConfig, MergeTakesHostSettingsAndOverridesInOrder) {
  MachineConfig saved = roundTrip(sample());
  MachineConfig host;
  host.log_level = "debug";
  host.serial_log = "/tmp/serial";
  host.timeout = 30;
  host.report = "/tmp/record.json";
  host.restore = RestoreSource{"s", "m", true};
  host.disks = {DiskConfig{"/copy/root.img"}, DiskConfig{"/copy/data.img", true}};
  host.nets = {NetConfig{"tap9"}};
  auto m = SavedConfig::merge(saved, host);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->log_level, "debug");
  EXPECT_EQ(m->serial_log, "/tmp/serial");
  EXPECT_EQ(m->timeout, 30);
  EXPECT_EQ(m->report, "/tmp/record.json");
  ASSERT_TRUE(m->restore);
  EXPECT_EQ(m->disks[0].path, "/copy/root.img");
  EXPECT_EQ(m->disks[0].serial, "root") << "the guest-visible settings are the saved ones";
  EXPECT_EQ(m->disks[1].path, "/copy/data.img");
  EXPECT_EQ(m->nets[0].tap, "tap9");
  EXPECT_EQ(m->nets[0].mac, saved.nets[0].mac);
  EXPECT_EQ(m->memory, saved.memory);

  MachineConfig one_disk = host;
  one_disk.disks.pop_back();
  EXPECT_FALSE(SavedConfig::merge(saved, one_disk).ok());
  MachineConfig writable = host;
  writable.disks[1].read_only = false;
  auto ro = SavedConfig::merge(saved, writable);
  ASSERT_FALSE(ro.ok());
  EXPECT_NE(ro.error().message.find("read-only"), std::string::npos) << ro.error().message;
  MachineConfig two_nets = host;
  two_nets.nets.push_back(NetConfig{"tap8"});
  EXPECT_FALSE(SavedConfig::merge(saved, two_nets).ok());
}

TEST(SavedConfig, AVirtioFsMachineIsNotSaved) {
  MachineConfig c = sample();
  EXPECT_TRUE(SavedConfig::check(c).ok());
  c.filesystems.push_back(FsConfig{"/srv", "", "share"});
  auto r = SavedConfig::check(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("virtio-fs"), std::string::npos);
}

TEST(SavedConfig, Hostile_TamperedValuesAreRefused) {
  StateWriter w;
  SavedConfig::encode(sample(), w);
  std::vector<uint8_t> good = w.take();
  // Cut anywhere: the reader says truncated, never reads past the end.
  for (size_t n = 0; n < good.size(); n += 7) {
    StateReader r(std::span(good.data(), n), "cut");
    (void)SavedConfig::decode(r);
    EXPECT_FALSE(r.finish().ok()) << n;
  }
  // An engine that does not exist: the first disk's aio byte follows its path, read-only bit,
  // serial and ioeventfd bit.
  MachineConfig one;
  one.disks = {DiskConfig{"/d"}};
  StateWriter w1;
  SavedConfig::encode(one, w1);
  std::vector<uint8_t> bytes = w1.take();
  StateWriter prefix;
  prefix.string(one.kernel);
  prefix.string(one.cmdline);
  prefix.u64(one.memory);
  prefix.u32(one.cpus);
  prefix.u32(1);
  prefix.string("/d");
  prefix.boolean(false);
  prefix.string("");
  prefix.boolean(true);
  size_t aio_at = prefix.data().size();
  ASSERT_EQ(bytes[aio_at], static_cast<uint8_t>(devices::BlockEngineKind::LibAio));
  bytes[aio_at] = 9;
  StateReader r(bytes, "tampered");
  (void)SavedConfig::decode(r);
  auto f = r.finish();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("disk aio"), std::string::npos) << f.error().message;
}

}  // namespace
}  // namespace ember::vmm
