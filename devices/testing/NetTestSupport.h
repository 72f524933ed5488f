// Test-only helpers for the virtio-net unit tests: a network namespace private to the calling
// thread (so that taps the tests create neither see nor disturb the machine's networking), link
// control, and an AF_PACKET socket on a tap's interface, which is the host's side of the wire:
// frames it sends leave through the tap towards the device (the device reads them from the tap
// fd), frames the device writes to the tap fd arrive on it.
//
// Everything here needs CAP_NET_ADMIN / CAP_NET_RAW (root) and /dev/net/tun; netAvailable()
// says whether the tests can run, and why not.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace ember::devices::testing {

constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE local experimental

inline bool netAvailable(std::string* why) {
  if (geteuid() != 0) return *why = "needs root (CAP_NET_ADMIN)", false;
  if (access("/dev/net/tun", R_OK | W_OK) != 0) return *why = "no /dev/net/tun", false;
  return true;
}

// Moves the calling thread into a fresh network namespace for this object's lifetime (taps
// created meanwhile live and die there). When unshare() is refused the thread stays where it is
// and isolated() is false; names must then be unique, which uniqueTapName() provides anyway.
class PrivateNetns {
 public:
  PrivateNetns() {
    saved_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ >= 0 && unshare(CLONE_NEWNET) == 0) isolated_ = true;
  }
  ~PrivateNetns() {
    if (isolated_) (void)setns(saved_, CLONE_NEWNET);
    if (saved_ >= 0) close(saved_);
  }
  PrivateNetns(const PrivateNetns&) = delete;
  PrivateNetns& operator=(const PrivateNetns&) = delete;
  bool isolated() const { return isolated_; }

 private:
  int saved_ = -1;
  bool isolated_ = false;
};

inline std::string uniqueTapName() {
  static int counter = 0;
  return "emu" + std::to_string(getpid() % 1000000) + "n" + std::to_string(counter++ % 1000);
}

// Sets IFF_UP on or off; false with errno set on failure.
inline bool setLinkUp(const std::string& name, bool up) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  bool ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags = static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
    ok = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  }
  int err = errno;
  close(s);
  errno = err;
  return ok;
}

// No IPv6 on the interface: the kernel then sends nothing on it unasked (no router
// solicitations, MLD reports or DAD probes).
inline void disableIpv6(const std::string& name) {
  std::ofstream("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6") << "1\n";
}

// An Ethernet frame of `len` bytes with the test EtherType; byte i >= 16 is (seed + i) & 0xff,
// bytes 14-15 carry `seed`.
inline std::vector<uint8_t> testFrame(size_t len, uint16_t seed, const uint8_t dst[6] = nullptr) {
  static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t kSrc[6] = {0x02, 0x00, 0x00, 0xee, 0x00, 0x01};
  std::vector<uint8_t> f(len);
  std::memcpy(f.data(), dst != nullptr ? dst : kBroadcast, 6);
  std::memcpy(f.data() + 6, kSrc, 6);
  f[12] = kTestEtherType >> 8;
  f[13] = kTestEtherType & 0xff;
  if (len > 15) {
    f[14] = static_cast<uint8_t>(seed >> 8);
    f[15] = static_cast<uint8_t>(seed);
  }
  for (size_t i = 16; i < len; ++i) f[i] = static_cast<uint8_t>(seed + i);
  return f;
}

// The host's end of a tap: an AF_PACKET socket bound to its interface.
class PacketSocket {
 public:
  PacketSocket() = default;
  ~PacketSocket() {
    if (fd_ >= 0) close(fd_);
  }
  PacketSocket(const PacketSocket&) = delete;
  PacketSocket& operator=(const PacketSocket&) = delete;

  bool open(const std::string& ifname, std::string* why) {
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (fd_ < 0) return *why = std::string("AF_PACKET socket: ") + std::strerror(errno), false;
    ifindex_ = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex_ == 0) return *why = "no interface " + ifname, false;
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex_;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      return *why = std::string("bind: ") + std::strerror(errno), false;
    }
    return true;
  }

  // Sends `frame` out of the interface (towards whoever reads the tap fd).
  bool send(const std::vector<uint8_t>& frame) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);
    return sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                  sizeof to) == static_cast<ssize_t>(frame.size());
  }

  // The next frame with the test EtherType that arrived on the interface (not one this host
  // sent), waiting up to `timeout_ms`.
  std::optional<std::vector<uint8_t>> receive(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<uint8_t> buf(70000);
    for (;;) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n >= 14 && from.sll_pkttype != PACKET_OUTGOING && buf[12] == (kTestEtherType >> 8) &&
          buf[13] == (kTestEtherType & 0xff)) {
        buf.resize(static_cast<size_t>(n));
        return buf;
      }
      if (n >= 0) continue;  // someone else's frame
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      (void)poll(&p, 1, static_cast<int>(left));
    }
  }

  // Frames with the test EtherType that arrive within `quiet_ms` (0 expected, usually).
  size_t countWithin(int quiet_ms) {
    size_t n = 0;
    while (receive(quiet_ms)) ++n;
    return n;
  }

 private:
  int fd_ = -1;
  int ifindex_ = 0;
};

}  // namespace ember::devices::testing
