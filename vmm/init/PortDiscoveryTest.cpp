// PortDiscovery: named ports in a fake sysfs tree, the bounded wait (a name that appears late,
// ports that never do) and the /dev/virtio-ports links.
// test-labels: threaded
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <thread>

#include "vmm/init/PortDiscovery.h"
#include "vmm/init/testing/TempDir.h"

namespace ember::init {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::TempDir;

// A fake machine: SYS/class/virtio-ports/<device>/name and DEV/<device>.
class FakePorts {
 public:
  FakePorts() {
    std::filesystem::create_directories(dir_.file("sys/class/virtio-ports"));
    std::filesystem::create_directories(dir_.file("dev"));
  }
  std::string sys() const { return dir_.file("sys"); }
  std::string dev() const { return dir_.file("dev"); }
  // The device as the driver registers it, before the host has named it.
  void addDevice(const std::string& device) const {
    std::filesystem::create_directories(dir_.file("sys/class/virtio-ports/" + device));
    dir_.write("dev/" + device, "");
  }
  void name(const std::string& device, const std::string& name) const {
    dir_.write("sys/class/virtio-ports/" + device + "/name", name + "\n");
  }

 private:
  TempDir dir_;
};

struct TimedWait {
  InitResult<PortMap> ports;
  std::chrono::steady_clock::duration took;
};

TimedWait timedWait(const FakePorts& fake, const std::vector<std::string>& names,
                    std::chrono::milliseconds timeout, std::chrono::milliseconds interval) {
  auto start = std::chrono::steady_clock::now();
  InitResult<PortMap> ports = waitForPorts(fake.sys(), fake.dev(), names, timeout, interval);
  return {std::move(ports), std::chrono::steady_clock::now() - start};
}

TEST(PortDiscovery, ScanFindsNamedPortsOnly) {
  FakePorts fake;
  fake.addDevice("vport0p1");
  fake.name("vport0p1", "ember.status");
  fake.addDevice("vport0p2");
  fake.name("vport0p2", "ember.stdout");
  fake.addDevice("vport1p0");  // no name yet
  EXPECT_EQ(scanNamedPorts(fake.sys()),
            (PortMap{{"ember.status", "vport0p1"}, {"ember.stdout", "vport0p2"}}));
}

TEST(PortDiscovery, ScanWithoutTheDriverFindsNothing) {
  TempDir empty;
  EXPECT_TRUE(scanNamedPorts(empty.path()).empty());
}

TEST(PortDiscovery, WaitReturnsPortsAlreadyThere) {
  FakePorts fake;
  fake.addDevice("vport0p1");
  fake.name("vport0p1", "status");
  fake.addDevice("vport0p2");
  fake.name("vport0p2", "out");
  // stdout and stderr may share a port.
  InitResult<PortMap> ports =
      waitForPorts(fake.sys(), fake.dev(), {"status", "out", "out"}, 1s, 10ms);
  ASSERT_TRUE(ports.ok()) << ports.error().message;
  EXPECT_EQ(ports.value(), (PortMap{{"status", "vport0p1"}, {"out", "vport0p2"}}));
}

TEST(PortDiscovery, WaitSeesANameThatArrivesLater) {
  FakePorts fake;
  fake.addDevice("vport0p1");
  std::thread host([&] {
    std::this_thread::sleep_for(100ms);
    fake.name("vport0p1", "late");
  });
  TimedWait wait = timedWait(fake, {"late"}, 10s, 10ms);
  host.join();
  ASSERT_TRUE(wait.ports.ok()) << wait.ports.error().message;
  EXPECT_EQ(wait.ports.value().at("late"), "vport0p1");
  EXPECT_GE(wait.took, 90ms);
  EXPECT_LT(wait.took, 5s);
}

TEST(PortDiscovery, WaitGivesUpAfterTheTimeoutNamingWhatIsMissingAndWhatWasSeen) {
  FakePorts fake;
  fake.addDevice("vport0p1");
  fake.name("vport0p1", "status");
  TimedWait wait = timedWait(fake, {"status", "out", "err"}, 200ms, 20ms);
  ASSERT_FALSE(wait.ports.ok());
  EXPECT_EQ(wait.ports.error().message,
            "virtio-console ports did not appear within 200 ms: out, err "
            "(named ports seen: status (vport0p1))");
  EXPECT_GE(wait.took, 200ms);
  EXPECT_LT(wait.took, 5s);
}

TEST(PortDiscovery, WaitNeedsTheDeviceNodeToo) {
  FakePorts fake;
  fake.addDevice("vport0p1");
  fake.name("vport0p1", "status");
  std::filesystem::remove(fake.dev() + "/vport0p1");
  InitResult<PortMap> ports = waitForPorts(fake.sys(), fake.dev(), {"status"}, 50ms, 10ms);
  ASSERT_FALSE(ports.ok());
  EXPECT_THAT(ports.error().message, HasSubstr("within 50 ms: status (named ports seen: status"));
}

TEST(PortDiscovery, LinksEachPortUnderVirtioPortsAndReplacesOldLinks) {
  TempDir dev;
  std::filesystem::create_directories(dev.file("virtio-ports"));
  ASSERT_EQ(::symlink("../stale", dev.file("virtio-ports/status").c_str()), 0);
  ASSERT_TRUE(linkPorts(dev.path(), {{"status", "vport0p1"}, {"out", "vport0p2"}}).ok());
  char target[PATH_MAX] = {};
  ASSERT_GT(::readlink(dev.file("virtio-ports/status").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "../vport0p1");
  std::fill(std::begin(target), std::end(target), '\0');
  ASSERT_GT(::readlink(dev.file("virtio-ports/out").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "../vport0p2");
}

TEST(PortDiscovery, LinkingFailsWhereVirtioPortsIsNotADirectory) {
  TempDir dev;
  dev.write("virtio-ports", "a file in the way");
  InitResult<void> linked = linkPorts(dev.path(), {{"status", "vport0p1"}});
  ASSERT_FALSE(linked.ok());
  EXPECT_EQ(linked.error().message,
            "creating directory " + dev.file("virtio-ports") + ": Not a directory");
}

}  // namespace
}  // namespace ember::init
