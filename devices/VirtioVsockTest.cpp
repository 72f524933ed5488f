// VirtioVsock's set-up refusals (this host has no /dev/vhost-vsock: the device is tested in the
// emulated-SVM L1, tools/linux-boot --vsock): a CID below 3 or above the 32-bit range, a device
// that cannot be opened, and one that refuses vhost's requests, each one error naming it.
#include <gtest/gtest.h>

#include "devices/VirtioVsock.h"

namespace ember::devices {
namespace {

TEST(VirtioVsock, ACidThatIsNotAGuestsIsRefusedBeforeAnythingOpens) {
  for (uint64_t cid : {0ULL, 1ULL, 2ULL, 0xffffffffULL, 1ULL << 40}) {
    auto v = VirtioVsock::create(cid, "/dev/null");
    ASSERT_FALSE(v) << cid;
    EXPECT_NE(v.error().message.find("3 to 4294967294"), std::string::npos) << v.error().message;
  }
}

TEST(VirtioVsock, AMissingOrWrongDeviceIsOneErrorNamingIt) {
  auto v = VirtioVsock::create(3, "/nonexistent/vhost-vsock");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("--vsock cid=3: cannot open /nonexistent/vhost-vsock"),
            std::string::npos)
      << v.error().message;
  EXPECT_NE(v.error().message.find("modprobe"), std::string::npos);
  auto n = VirtioVsock::create(3, "/dev/null");
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("VHOST_SET_OWNER"), std::string::npos) << n.error().message;
}

}  // namespace
}  // namespace ember::devices
