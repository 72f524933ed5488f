// VmResources: Firecracker's resource bodies, good and bad, and the MachineConfig they make.
#include <gtest/gtest.h>

#include "vmm/api/VmResources.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm::api {
namespace {

using ember::vmm::testing::TempDir;

class VmResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_ = dir_.write("vmlinux", "kernel");
    initrd_ = dir_.write("initrd", "initrd");
    rootfs_ = dir_.write("rootfs.ext4", std::string(4096, '\0'));
    data_ = dir_.write("data.img", std::string(4096, '\0'));
  }
  std::string drive(const std::string& id, const std::string& path, bool root,
                    const std::string& extra = "") {
    return fmt::format(R"({{"drive_id": "{}", "path_on_host": "{}", "is_root_device": {},
                          "is_read_only": false{}}})",
                       id, path, root ? "true" : "false", extra);
  }
  // The message of a refused request, or a note that it was accepted.
  static std::string refusal(const Result<void>& r) {
    return r ? std::string("accepted") : r.error().message;
  }

  TempDir dir_;
  std::string kernel_, initrd_, rootfs_, data_;
  VmResources res_;
};

TEST_F(VmResourcesTest, MachineConfigPutAndPatch) {
  EXPECT_EQ(res_.machine().vcpu_count, 1u);
  EXPECT_EQ(res_.machine().mem_size_mib, 128u);
  ASSERT_TRUE(res_.putMachineConfig(R"({"vcpu_count": 2, "mem_size_mib": 1024})"));
  EXPECT_EQ(res_.machine().vcpu_count, 2u);
  ASSERT_TRUE(res_.patchMachineConfig(R"({"mem_size_mib": 256})"));
  EXPECT_EQ(res_.machine().vcpu_count, 2u);
  EXPECT_EQ(res_.machine().mem_size_mib, 256u);
  ASSERT_TRUE(res_.putMachineConfig(
      R"({"vcpu_count": 1, "mem_size_mib": 64, "smt": false, "track_dirty_pages": false,
          "cpu_template": "None", "huge_pages": "None"})"));
  EXPECT_EQ(res_.machineConfigJson(),
            R"({"huge_pages":"None","mem_size_mib":64,"smt":false,"track_dirty_pages":false,)"
            R"("vcpu_count":1})");
}

TEST_F(VmResourcesTest, MachineConfigRefusalsNameTheFieldAndChangeNothing) {
  ASSERT_TRUE(res_.putMachineConfig(R"({"vcpu_count": 2, "mem_size_mib": 512})"));
  struct Case {
    const char* body;
    const char* message;
  } cases[] = {
      {R"({"vcpu_count": 2)", "not valid JSON"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"mem_size_mib": 512})", "'vcpu_count' is required"},
      {R"({"vcpu_count": 2})", "'mem_size_mib' is required"},
      {R"({"vcpu_count": "2", "mem_size_mib": 512})", "vcpu_count must be an integer"},
      {R"({"vcpu_count": 0, "mem_size_mib": 512})", "vcpu_count must be from 1 to 254"},
      {R"({"vcpu_count": 255, "mem_size_mib": 512})", "vcpu_count must be from 1 to 254"},
      {R"({"vcpu_count": -1, "mem_size_mib": 512})", "vcpu_count must be an integer"},
      {R"({"vcpu_count": 1.5, "mem_size_mib": 512})", "vcpu_count must be an integer"},
      {R"({"vcpu_count": 2, "mem_size_mib": 0})", "mem_size_mib must be from 1"},
      {R"({"vcpu_count": 2, "mem_size_mib": 18446744073709551615})", "mem_size_mib must be"},
      {R"({"vcpu_count": 2, "mem_size_mib": 512, "smt": true})", "smt is not offered"},
      {R"({"vcpu_count": 2, "mem_size_mib": 512, "smt": 1})", "smt must be true or false"},
      {R"({"vcpu_count": 2, "mem_size_mib": 512, "track_dirty_pages": true})",
       "track_dirty_pages is not offered"},
      {R"({"vcpu_count": 2, "mem_size_mib": 512, "cpu_template": "T2"})", "cpu_template 'T2'"},
      {R"({"vcpu_count": 2, "mem_size_mib": 512, "huge_pages": "2M"})", "huge_pages '2M'"},
      {R"({"vcpu_count": 2, "mem_size_mib": 512, "vcpus": 4})", "unknown field 'vcpus'"},
  };
  for (const auto& c : cases) {
    auto r = res_.putMachineConfig(c.body);
    EXPECT_NE(refusal(r).find(c.message), std::string::npos) << c.body << ": " << refusal(r);
    EXPECT_NE(refusal(r).find("machine-config: "), std::string::npos) << refusal(r);
  }
  EXPECT_NE(refusal(res_.patchMachineConfig(R"({"mem_size_mib": true})")).find("mem_size_mib"),
            std::string::npos);
  EXPECT_EQ(res_.machine().vcpu_count, 2u);
  EXPECT_EQ(res_.machine().mem_size_mib, 512u);
}

TEST_F(VmResourcesTest, BootSourceChecksItsFilesAndDropsPciOff) {
  auto warning = res_.putBootSource(fmt::format(
      R"({{"kernel_image_path": "{}", "initrd_path": "{}",
          "boot_args": "console=ttyS0 reboot=k panic=1 pci=off quiet"}})",
      kernel_, initrd_));
  ASSERT_TRUE(warning) << warning.error().message;
  EXPECT_NE(warning->find("pci=off"), std::string::npos);
  EXPECT_EQ(res_.boot()->boot_args, "console=ttyS0 reboot=k panic=1 quiet");
  EXPECT_EQ(res_.boot()->initrd_path, initrd_);

  auto missing = res_.putBootSource(R"({"kernel_image_path": "/nonexistent/vmlinux"})");
  ASSERT_FALSE(missing);
  EXPECT_NE(
      missing.error().message.find("kernel_image_path '/nonexistent/vmlinux' cannot be opened"),
      std::string::npos)
      << missing.error().message;
  EXPECT_FALSE(res_.putBootSource(fmt::format(R"({{"kernel_image_path": "{}"}})", dir_.path())));
  EXPECT_FALSE(res_.putBootSource(R"({"boot_args": "quiet"})"));
  EXPECT_FALSE(
      res_.putBootSource(fmt::format(R"({{"kernel_image_path": "{}", "kernel": 1}})", kernel_)));
  EXPECT_FALSE(
      res_.putBootSource(fmt::format(R"({{"kernel_image_path": "{}", "boot_args": 7}})", kernel_)));
  EXPECT_EQ(res_.boot()->kernel_image_path, kernel_);  // the refusals changed nothing
}

TEST_F(VmResourcesTest, DrivesRootFirstWithRootArgument) {
  ASSERT_TRUE(res_.putBootSource(fmt::format(R"({{"kernel_image_path": "{}",
                                                 "boot_args": "console=ttyS0"}})",
                                             kernel_)));
  ASSERT_TRUE(res_.putDrive("data", drive("data", data_, false, R"(, "io_engine": "Sync")")));
  ASSERT_TRUE(res_.putDrive("rootfs", drive("rootfs", rootfs_, true)));
  auto config = res_.machineConfig(MachineConfig{});
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_EQ(config->disks.size(), 2u);
  EXPECT_EQ(config->disks[0].path, rootfs_);
  EXPECT_EQ(config->disks[0].serial, "rootfs");
  EXPECT_EQ(config->disks[1].aio, devices::BlockEngineKind::Sync);
  EXPECT_EQ(config->cmdline, "console=ttyS0 root=/dev/vda rw");
  EXPECT_EQ(config->kernel, kernel_);
  EXPECT_EQ(config->memory, 128ULL << 20);

  // The same id again replaces the drive: read-only root by PARTUUID.
  ASSERT_TRUE(res_.putDrive("rootfs", fmt::format(R"({{"drive_id": "rootfs", "path_on_host": "{}",
                                            "is_root_device": true, "is_read_only": true,
                                            "partuuid": "0eaa91a0-01"}})",
                                                  rootfs_)));
  EXPECT_EQ(res_.drives().size(), 2u);
  EXPECT_EQ(res_.machineConfig(MachineConfig{})->cmdline,
            "console=ttyS0 root=PARTUUID=0eaa91a0-01 ro");
  EXPECT_TRUE(res_.machineConfig(MachineConfig{})->disks[0].read_only);
}

TEST_F(VmResourcesTest, DriveRefusals) {
  ASSERT_TRUE(res_.putDrive("rootfs", drive("rootfs", rootfs_, true)));
  struct Case {
    std::string id, body, message;
  } cases[] = {
      {"other", drive("rootfs", data_, false), "drive_id 'rootfs' in the body does not match"},
      {"data", drive("data", data_, true), "the drive 'rootfs' is the root device already"},
      {"data", drive("data", "/nonexistent.img", false), "cannot be opened"},
      {"data", drive("data", "/dev/null", false), "is not a regular file or block device"},
      {"data", R"({"drive_id": "data", "is_root_device": false})", "'path_on_host' is required"},
      {"data", fmt::format(R"({{"drive_id": "data", "path_on_host": "{}"}})", data_),
       "'is_root_device' is required"},
      {"data", drive("data", data_, false, R"(, "cache_type": "None")"), "cache_type must be"},
      {"data", drive("data", data_, false, R"(, "io_engine": "Fast")"), "io_engine must be"},
      {"data", drive("data", data_, false, R"(, "partuuid": "1")"), "partuuid is only for"},
      {"data", drive("data", data_, false, R"(, "rate_limiter": {})"), "rate_limiter is not"},
      {"data", drive("data", data_, false, R"(, "socket": "/tmp/s")"), "vhost-user-blk"},
      {"data", drive("data", data_, false, R"(, "is_read_only": "no")"), "is_read_only must be"},
      {"data", drive("data", data_, false, R"(, "colour": "red")"), "unknown field 'colour'"},
  };
  for (const auto& c : cases) {
    auto r = res_.putDrive(c.id, c.body);
    EXPECT_NE(refusal(r).find(c.message), std::string::npos) << c.body << ": " << refusal(r);
    EXPECT_EQ(refusal(r).rfind("drives/" + c.id + ": ", 0), 0u) << refusal(r);
  }
  EXPECT_EQ(res_.drives().size(), 1u);
}

TEST_F(VmResourcesTest, NetworkInterfaces) {
  ASSERT_TRUE(res_.putNetworkInterface(
      "eth0",
      R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "AA:FC:00:00:00:01"})"));
  ASSERT_TRUE(res_.putNetworkInterface(
      "eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1", "mtu": 9000})"));
  ASSERT_TRUE(res_.putBootSource(fmt::format(R"({{"kernel_image_path": "{}"}})", kernel_)));
  auto config = res_.machineConfig(MachineConfig{});
  ASSERT_EQ(config->nets.size(), 2u);
  EXPECT_EQ(config->nets[0].tap, "tap0");
  EXPECT_EQ(config->nets[0].mac, (std::array<uint8_t, 6>{0xaa, 0xfc, 0, 0, 0, 1}));
  EXPECT_EQ(config->nets[1].mtu, 9000);
  EXPECT_NE(res_.vmConfigJson().find(R"("guest_mac":"aa:fc:00:00:00:01")"), std::string::npos);

  struct Case {
    const char* id;
    const char* body;
    const char* message;
  } cases[] = {
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "tap0"})",
       "is the interface 'eth0' already"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "tap2", "guest_mac": "AA:FC:00:00:00:01"})",
       "guest_mac is the interface 'eth0'"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "tap2", "guest_mac": "01:00:5e:00:00:01"})",
       "multicast"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "tap2", "guest_mac": "aa:fc"})",
       "is not of the form"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "a-name-far-too-long-for-linux"})",
       "is not an interface name"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "../tap"})", "is not an interface name"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "tap2", "mtu": 67})",
       "mtu must be from 68"},
      {"eth2", R"({"iface_id": "eth3", "host_dev_name": "tap2"})", "does not match"},
      {"eth2", R"({"iface_id": "eth2"})", "'host_dev_name' is required"},
      {"eth2", R"({"iface_id": "eth2", "host_dev_name": "tap2", "rx_rate_limiter": {}})",
       "rate limiters"},
  };
  for (const auto& c : cases) {
    auto r = res_.putNetworkInterface(c.id, c.body);
    EXPECT_NE(refusal(r).find(c.message), std::string::npos) << c.body << ": " << refusal(r);
  }
  EXPECT_EQ(res_.nets().size(), 2u);
}

TEST_F(VmResourcesTest, ConfigFileIsAllOrNothing) {
  std::string file = fmt::format(R"({{
    "boot-source": {{"kernel_image_path": "{}", "boot_args": "console=ttyS0 pci=off"}},
    "drives": [{{"drive_id": "rootfs", "path_on_host": "{}", "is_root_device": true,
                 "is_read_only": false}}],
    "machine-config": {{"vcpu_count": 2, "mem_size_mib": 256}},
    "network-interfaces": [{{"iface_id": "eth0", "host_dev_name": "tap0"}}]
  }})",
                                 kernel_, rootfs_);
  auto warnings = res_.applyConfigFile(file);
  ASSERT_TRUE(warnings) << warnings.error().message;
  EXPECT_EQ(warnings->size(), 1u);  // pci=off
  auto config = res_.machineConfig(MachineConfig{});
  ASSERT_TRUE(config);
  EXPECT_EQ(config->cpus, 2u);
  EXPECT_EQ(config->cmdline, "console=ttyS0 root=/dev/vda rw");
  EXPECT_EQ(config->nets.size(), 1u);

  VmResources fresh;
  auto bad = fresh.applyConfigFile(fmt::format(
      R"({{"machine-config": {{"vcpu_count": 4, "mem_size_mib": 256}},
          "drives": [{{"drive_id": "x", "path_on_host": "/nonexistent", "is_root_device": false}}]}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("drives/x"), std::string::npos);
  EXPECT_EQ(fresh.machine().vcpu_count, 1u);  // the good section did not apply either
  EXPECT_FALSE(fresh.applyConfigFile(R"({"vsock": {}})"));
  EXPECT_FALSE(fresh.applyConfigFile(R"({"drives": {"drive_id": "x"}})"));
  EXPECT_FALSE(fresh.applyConfigFile(R"({"drives": [{"drive_id": 3}]})"));
  EXPECT_FALSE(fresh.machineConfig(MachineConfig{}));  // no boot source
}

TEST_F(VmResourcesTest, BalloonInTheApiAndTheConfigFile) {
  for (const char* bad :
       {R"({"amount_mib": 64})", R"({"deflate_on_oom": false})",
        R"({"amount_mib": -1, "deflate_on_oom": false})",
        R"({"amount_mib": 16777216, "deflate_on_oom": false})",
        R"({"amount_mib": 64, "deflate_on_oom": 1})",
        R"({"amount_mib": 64, "deflate_on_oom": false, "stats_polling_interval_s": -2})",
        R"({"amount_mib": 64, "deflate_on_oom": false, "free_page_reporting": true})", "[]"}) {
    auto r = res_.putBalloon(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message.rfind("balloon: ", 0), 0u) << r.error().message;
  }
  EXPECT_FALSE(res_.balloon());  // nothing refused changed anything
  std::string file = fmt::format(R"({{
    "boot-source": {{"kernel_image_path": "{}"}},
    "machine-config": {{"vcpu_count": 1, "mem_size_mib": 256}},
    "balloon": {{"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 2}}
  }})",
                                 kernel_);
  ASSERT_TRUE(res_.applyConfigFile(file));
  auto config = res_.machineConfig(MachineConfig{});
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->balloon, std::optional<uint64_t>(64ULL << 20));
  EXPECT_TRUE(config->balloon_deflate_on_oom);
  EXPECT_EQ(config->balloon_stats_interval_s, 2u);
  EXPECT_NE(
      res_.vmConfigJson().find(
          R"("balloon":{"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":2})"),
      std::string::npos)
      << res_.vmConfigJson();
  // The target must leave the guest some memory: checked at InstanceStart, when the memory size
  // is final.
  ASSERT_TRUE(res_.patchMachineConfig(R"({"mem_size_mib": 64})"));
  auto too_big = res_.machineConfig(MachineConfig{});
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().message.find("amount_mib 64 must be below"), std::string::npos);
}

TEST_F(VmResourcesTest, DescribingTheCommandLine) {
  MachineConfig c;
  c.kernel = kernel_;
  c.cmdline = "console=ttyS0";
  c.cpus = 3;
  c.memory = 512ULL << 20;
  DiskConfig d;
  d.path = data_;
  d.serial = "data";
  c.disks.push_back(d);
  std::string j = VmResources::describing(c).vmConfigJson();
  EXPECT_NE(j.find(R"("vcpu_count":3)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("mem_size_mib":512)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("drive_id":"data")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("boot_args":"console=ttyS0")"), std::string::npos) << j;
}

}  // namespace
}  // namespace ember::vmm::api
