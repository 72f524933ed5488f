// VhostKernel's failure paths (this host has no /dev/vhost-*: the real device is tested in the
// emulated-SVM L1): a device that cannot be opened says which and what to do, and every ioctl
// a device refuses is an error naming the ioctl and the device (/dev/null refuses them all).
#include <gtest/gtest.h>

#include "virtio/VhostKernel.h"

namespace ember::virtio {
namespace {

TEST(VhostKernel, AMissingDeviceNamesItselfAndTheModule) {
  auto v = VhostKernel::open("/nonexistent/vhost-net", "--net tap=t0,vhost=on");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("--net tap=t0,vhost=on: cannot open /nonexistent/vhost-net"),
            std::string::npos)
      << v.error().message;
  EXPECT_NE(v.error().message.find("modprobe vhost_net"), std::string::npos);
}

TEST(VhostKernel, EveryRefusedIoctlIsNamed) {
  auto v = VhostKernel::open("/dev/null", "test");
  ASSERT_TRUE(v) << v.error().message;
  auto named = [](const Result<void>& r, const char* ioctl) {
    ASSERT_FALSE(r.ok()) << ioctl;
    EXPECT_NE(r.error().message.find(std::string("/dev/null: ") + ioctl), std::string::npos)
        << r.error().message;
  };
  named(v->setOwner(), "VHOST_SET_OWNER");
  auto f = v->getFeatures();
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("VHOST_GET_FEATURES"), std::string::npos);
  named(v->setFeatures(1ULL << 32), "VHOST_SET_FEATURES");
  GuestRegionSpec specs[] = {{GuestAddress(0), 1 << 20}};
  auto mem = std::move(GuestMemory::create(specs)).value();
  named(v->setMemTable(mem), "VHOST_SET_MEM_TABLE");
  named(v->setVringNum(0, 256), "VHOST_SET_VRING_NUM");
  named(v->setVringAddr(0, 0x1000, 0x2000, 0x3000), "VHOST_SET_VRING_ADDR");
  named(v->setVringBase(0, 0), "VHOST_SET_VRING_BASE");
  auto base = v->getVringBase(0);
  ASSERT_FALSE(base);
  EXPECT_NE(base.error().message.find("VHOST_GET_VRING_BASE"), std::string::npos);
  named(v->setVringKick(0, -1), "VHOST_SET_VRING_KICK");
  named(v->setVringCall(0, -1), "VHOST_SET_VRING_CALL");
  named(v->netSetBackend(0, -1), "VHOST_NET_SET_BACKEND");
  named(v->vsockSetGuestCid(3), "VHOST_VSOCK_SET_GUEST_CID");
  named(v->vsockSetRunning(true), "VHOST_VSOCK_SET_RUNNING");
}

}  // namespace
}  // namespace ember::virtio
