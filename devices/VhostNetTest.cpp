// VhostNet's feature negotiation: a vhost-net that does not report a ring or header feature
// (here MRG_RXBUF, then EVENT_IDX) has ember stop offering it, while the features the tap and
// ember serve (offloads, MAC, MTU, status) are offered as without vhost; and opening a device
// that is not there is one error naming it. (The real /dev/vhost-net is tested in the L1:
// linux_boot_net_balloon, linux_boot_legacy.)
#include <gtest/gtest.h>

#include "devices/VhostNet.h"
#include "devices/VirtioNet.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {
namespace {

using namespace virtio;

TEST(VhostNet, OffersOnlyTheRingFeaturesVhostReports) {
  const uint64_t offered = net::kCsum | net::kMac | net::kStatus | net::kGuestTso4 |
                           net::kMrgRxbuf | feature::kIndirectDesc | feature::kEventIdx;
  const uint64_t all =
      net::kMrgRxbuf | feature::kIndirectDesc | feature::kEventIdx | feature::kVersion1;
  EXPECT_EQ(VhostNet::offerable(offered, all), offered);
  EXPECT_EQ(VhostNet::offerable(offered, all & ~net::kMrgRxbuf), offered & ~net::kMrgRxbuf);
  EXPECT_EQ(VhostNet::offerable(offered, all & ~feature::kEventIdx), offered & ~feature::kEventIdx);
  // The tap's and ember's own bits do not depend on what vhost reports.
  EXPECT_EQ(
      VhostNet::offerable(offered, 0) & (net::kCsum | net::kMac | net::kStatus | net::kGuestTso4),
      net::kCsum | net::kMac | net::kStatus | net::kGuestTso4);
}

TEST(VhostNet, AMissingDeviceIsOneErrorNamingIt) {
  auto v = VhostNet::open("--net tap=t0,vhost=on", "/nonexistent/vhost-net");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("/nonexistent/vhost-net"), std::string::npos);
  // A device that refuses VHOST_SET_OWNER (here /dev/null: not a vhost device at all).
  auto n = VhostNet::open("--net tap=t0,vhost=on", "/dev/null");
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("VHOST_SET_OWNER"), std::string::npos) << n.error().message;
}

}  // namespace
}  // namespace ember::devices
