// virtio-net against real kernel networking: the test guest pings the host's end of a tap and
// sends a burst of frames that the host counts, then receives frames the host sends; on the
// legacy and the modern interface, with ioeventfd kicks and with userspace kicks. Plus the
// configuration errors of --net (busy tap, not a tap, bad MAC/MTU/options) and --balloon.
//
// Each case runs in a network namespace of its own (`ip netns add`), with a tap `tap0` holding
// 10.0.2.2/24 (IPv6 off, so the host stack sends nothing unasked); ember runs inside it through
// `ip netns exec`, and the test's own AF_PACKET socket is opened inside it by a thread that
// setns()es there. When namespaces cannot be created, a uniquely named tap in the root namespace
// with a private 10.201.x.0/24 subnet is used instead, and the test says so (EMBER_TEST_NO_NETNS=1
// forces this). The namespace (or the tap) is deleted when the test ends, however it ends;
// namespaces left behind by a killed run (their name carries the dead pid) are deleted by the next
// run.
//
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns, CAP_NET_RAW) and /dev/net/tun; skipped
// otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "Process.h"
#include "tests/guest/net_burst.h"

namespace ember::test {
namespace {

constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kGuestMac = "52:54:00:12:34:56";
constexpr uint8_t kGuestMacBytes[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint32_t kBurst = 1000, kHostFrames = 256;

// Runs a shell command; its output (both streams) goes to `out` when given.
int shell(const std::string& cmd, std::string* out = nullptr) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  std::string text;
  while (fgets(buf, sizeof buf, p) != nullptr) text += buf;
  int status = pclose(p);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool haveRootAndTun() {
  return geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0;
}

// Runs `fn` on a fresh thread that has entered network namespace `ns` ("" = stay), so that the
// sockets it creates belong there; the calling thread's namespace never changes.
bool inNamespace(const std::string& ns, const std::function<bool(std::string*)>& fn,
                 std::string* why) {
  bool ok = false;
  std::thread t([&] {
    if (!ns.empty()) {
      int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        *why = "cannot enter network namespace " + ns + ": " + std::strerror(errno);
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
    }
    ok = fn(why);
  });
  t.join();
  return ok;
}

// A tap with an IPv4 address, up, in a network namespace of its own (or, failing that, in the
// root namespace). Deleted (namespace and all) on destruction.
class NetEnv {
 public:
  static std::unique_ptr<NetEnv> create(std::string* why) {
    static std::atomic<int> counter{0};
    removeStaleNamespaces();
    auto env = std::unique_ptr<NetEnv>(new NetEnv);
    int n = counter++;
    std::string out;
    env->ns_ = "ember-nt-" + std::to_string(getpid()) + "-" + std::to_string(n);
    // EMBER_TEST_NO_NETNS=1 forces the fallback (to test it where namespaces do work).
    bool have_ns = false;
    if (std::getenv("EMBER_TEST_NO_NETNS") != nullptr) {
      out = "EMBER_TEST_NO_NETNS is set";
    } else {
      have_ns = shell(std::string(kIp) + " netns add " + env->ns_, &out) == 0;
    }
    if (have_ns) {
      env->tap_ = "tap0";
      env->host_ip_ = "10.0.2.2";
      env->guest_ip_ = "10.0.2.15";
      (void)shell(env->prefix() + std::string(kIp) + " link set lo up");
    } else {
      while (!out.empty() && out.back() == '\n') out.pop_back();
      std::fprintf(stderr,
                   "[ note ] network namespaces unavailable (%s); using a tap in the root "
                   "namespace\n",
                   out.c_str());
      env->ns_.clear();
      env->tap_ = "embt" + std::to_string(getpid() % 100000) + "x" + std::to_string(n);
      std::string net = "10.201." + std::to_string(getpid() % 250);
      env->host_ip_ = net + ".2";
      env->guest_ip_ = net + ".15";
    }
    if (shell(env->prefix() + kIp + " tuntap add " + env->tap_ + " mode tap", &out) != 0) {
      *why = "ip tuntap add " + env->tap_ + ": " + out;
      return nullptr;
    }
    env->tap_made_ = true;
    (void)shell(env->prefix() + "sysctl -qw net.ipv6.conf." + env->tap_ + ".disable_ipv6=1");
    if (shell(env->prefix() + kIp + " addr add " + env->host_ip_ + "/24 dev " + env->tap_, &out) !=
            0 ||
        shell(env->prefix() + kIp + " link set " + env->tap_ + " up", &out) != 0) {
      *why = "configuring " + env->tap_ + ": " + out;
      return nullptr;
    }
    return env;
  }

  ~NetEnv() {
    if (!ns_.empty()) {
      (void)shell(std::string(kIp) + " netns del " + ns_);
    } else if (tap_made_) {
      (void)shell(std::string(kIp) + " link del " + tap_);
    }
  }

  const std::string& ns() const { return ns_; }
  const std::string& tap() const { return tap_; }
  const std::string& hostIp() const { return host_ip_; }
  const std::string& guestIp() const { return guest_ip_; }
  // Shell prefix that runs a command inside the namespace.
  std::string prefix() const {
    return ns_.empty() ? "" : std::string(kIp) + " netns exec " + ns_ + " ";
  }
  // argv that runs `argv` inside the namespace (ip netns exec execs it: the pid is the child's).
  std::vector<std::string> wrap(std::vector<std::string> argv) const {
    if (ns_.empty()) return argv;
    std::vector<std::string> w{kIp, "netns", "exec", ns_};
    w.insert(w.end(), argv.begin(), argv.end());
    return w;
  }
  uint64_t statistic(const std::string& name) const {
    std::string out;
    if (shell(prefix() + "cat /sys/class/net/" + tap_ + "/statistics/" + name, &out) != 0) return 0;
    return std::strtoull(out.c_str(), nullptr, 10);
  }

 private:
  NetEnv() = default;
  // Namespaces named ember-nt-<pid>-<n> whose process is gone.
  static void removeStaleNamespaces() {
    std::string list;
    if (shell(std::string(kIp) + " netns list", &list) != 0) return;
    std::istringstream in(list);
    std::string name;
    while (in >> name) {
      if (name.rfind("ember-nt-", 0) != 0) continue;
      pid_t pid = static_cast<pid_t>(std::strtol(name.c_str() + 9, nullptr, 10));
      if (pid > 0 && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH) {
        (void)shell(std::string(kIp) + " netns del " + name);
      }
    }
  }

  std::string ns_, tap_, host_ip_, guest_ip_;
  bool tap_made_ = false;
};

// The host's side of the wire: an AF_PACKET socket on the tap. A reader thread counts the guest's
// burst frames (each sequence number once, every byte checked); send() injects host frames,
// which leave through the tap towards the guest.
class TapPeer {
 public:
  ~TapPeer() {
    stop();
    if (fd_ >= 0) close(fd_);
  }

  bool open(const NetEnv& env, std::string* why) {
    return inNamespace(
        env.ns(),
        [&](std::string* w) {
          fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
          if (fd_ < 0) return *w = std::string("AF_PACKET socket: ") + std::strerror(errno), false;
          ifindex_ = static_cast<int>(if_nametoindex(env.tap().c_str()));
          if (ifindex_ == 0) return *w = "no interface " + env.tap(), false;
          sockaddr_ll sll{};
          sll.sll_family = AF_PACKET;
          sll.sll_protocol = htons(ETH_P_ALL);
          sll.sll_ifindex = ifindex_;
          if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
            return *w = std::string("bind to ") + env.tap() + ": " + std::strerror(errno), false;
          }
          int rcvbuf = 32 << 20;
          (void)setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
          return true;
        },
        why);
  }

  void start() {
    running_ = true;
    reader_ = std::thread([this] { readLoop(); });
  }
  void stop() {
    running_ = false;
    if (reader_.joinable()) reader_.join();
  }

  // `count` host burst frames to `dst`, lengths varying over 60..1514.
  bool send(const uint8_t dst[6], uint32_t count, std::string* why) {
    uint8_t src[6] = {0x02, 0xee, 0x00, 0x00, 0x00, 0x01};
    std::vector<uint8_t> f(ember_net::kBurstMaxLen);
    for (uint32_t seq = 0; seq < count; ++seq) {
      uint32_t len = ember_net::kBurstMinLen +
                     (seq * 397) % (ember_net::kBurstMaxLen - ember_net::kBurstMinLen + 1);
      ember_net::burst_fill(f.data(), len, dst, src, false, seq, count);
      sockaddr_ll to{};
      to.sll_family = AF_PACKET;
      to.sll_ifindex = ifindex_;
      to.sll_halen = 6;
      std::memcpy(to.sll_addr, dst, 6);
      for (int tries = 0;; ++tries) {
        if (sendto(fd_, f.data(), len, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(len)) {
          break;
        }
        if ((errno != ENOBUFS && errno != EAGAIN) || tries == 1000) {
          *why = "sendto: " + std::string(std::strerror(errno));
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return true;
  }

  struct Counts {
    uint64_t frames = 0, bytes = 0, distinct = 0, duplicates = 0, malformed = 0;
    uint32_t count_field = 0;
    double seconds = 0;  // first to last burst frame
  };
  Counts counts() {
    std::lock_guard lock(mutex_);
    Counts c = counts_;
    c.seconds = std::chrono::duration<double>(last_ - first_).count();
    return c;
  }

 private:
  void readLoop() {
    std::vector<uint8_t> buf(65536);
    while (running_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 14 || from.sll_pkttype == PACKET_OUTGOING) continue;
      if (buf[12] != (ember_net::kBurstEtherType >> 8) ||
          buf[13] != (ember_net::kBurstEtherType & 0xff))
        continue;
      auto now = std::chrono::steady_clock::now();
      uint32_t seq = 0, count = 0;
      std::lock_guard lock(mutex_);
      if (!ember_net::burst_parse(buf.data(), static_cast<uint32_t>(n), true, &seq, &count)) {
        ++counts_.malformed;
        continue;
      }
      if (counts_.frames == 0) first_ = now;
      last_ = now;
      ++counts_.frames;
      counts_.bytes += static_cast<uint64_t>(n);
      counts_.count_field = count;
      if (seen_.size() < count) seen_.resize(count, false);
      if (seen_[seq]) {
        ++counts_.duplicates;
      } else {
        seen_[seq] = true;
        ++counts_.distinct;
      }
    }
  }

  int fd_ = -1;
  int ifindex_ = 0;
  std::atomic<bool> running_{false};
  std::thread reader_;
  std::mutex mutex_;
  Counts counts_;
  std::vector<bool> seen_;
  std::chrono::steady_clock::time_point first_{}, last_{};
};

// The guest's line starting with `prefix` (empty when absent).
std::string lineWith(const std::string& out, const std::string& prefix, const std::string& needle) {
  for (const auto& l : linesStartingWith(out, prefix)) {
    if (l.find(needle) != std::string::npos) return l;
  }
  return "";
}

struct NetCase {
  const char* face;  // legacy | modern
  bool ioeventfd;
  const char* extra;  // more guest options
  const char* label;
};

class NetworkGuest : public ::testing::TestWithParam<NetCase> {};

TEST_P(NetworkGuest, PingBurstAndReceive) {
  if (!haveRootAndTun()) GTEST_SKIP() << "needs root and /dev/net/tun";
  const NetCase& c = GetParam();
  std::string why;
  auto env = NetEnv::create(&why);
  ASSERT_TRUE(env) << why;
  TapPeer peer;
  ASSERT_TRUE(peer.open(*env, &why)) << why;
  peer.start();
  uint64_t rx0 = env->statistic("rx_packets");

  std::string cmdline = std::string("tests=virtio-net-ping,virtio-net-burst virtio=") + c.face +
                        " net.ip=" + env->guestIp() + " net.peer=" + env->hostIp() +
                        " net.count=4 net.burst=" + std::to_string(kBurst) +
                        " net.rx=" + std::to_string(kHostFrames) + " " + c.extra;
  std::string net =
      "tap=" + env->tap() + ",mac=" + kGuestMac + (c.ioeventfd ? "" : ",ioeventfd=off");
  ProcessOptions opts;
  opts.timeout_ms = 180000;
  bool sent = false;
  std::string send_error;
  opts.on_tick = [&](pid_t, const std::string& out) {
    if (!sent && out.find("virtio-net-burst: ready to receive") != std::string::npos) {
      sent = true;
      if (!peer.send(kGuestMacBytes, kHostFrames, &send_error)) send_error += " (host send)";
    }
  };
  auto r = runProcess(env->wrap({EMBER_BINARY, "run", "--kernel", EMBER_TESTGUEST, "--memory",
                                 "128M", "--net", net, "--cmdline", cmdline}),
                      opts);
  // Frames still in flight in the host stack when ember exits: give the reader a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  peer.stop();
  uint64_t rx1 = env->statistic("rx_packets");

  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(send_error.empty()) << send_error;
  EXPECT_TRUE(linesStartingWith(r.out, "FAIL").empty()) << describe(r);
  for (const char* t : {"virtio-net-ping", "virtio-net-burst"}) {
    EXPECT_FALSE(lineWith(r.out, std::string("PASS ") + t, c.face).empty())
        << "missing 'PASS " << t << " " << c.face << "'\n"
        << describe(r);
  }
  EXPECT_NE(r.out.find("mac 52:54:00:12:34:56"), std::string::npos) << describe(r);

  // The host saw every burst frame exactly once, intact.
  auto counts = peer.counts();
  EXPECT_EQ(counts.distinct, kBurst);
  EXPECT_EQ(counts.duplicates, 0u);
  EXPECT_EQ(counts.malformed, 0u);
  EXPECT_EQ(counts.count_field, kBurst);
  // Frames the guest sent are RX on the host's tap: the burst, ARP and the echo requests.
  EXPECT_GE(rx1 - rx0, kBurst + 1 + 4) << "rx_packets " << rx0 << " -> " << rx1;

  std::string rtt = lineWith(r.out, "virtio-net-ping:", "rtt");
  std::string tx = lineWith(r.out, "virtio-net-burst:", "sent");
  std::string rx = lineWith(r.out, "virtio-net-burst:", "received");
  double host_mbs = counts.seconds > 0 ? counts.bytes / counts.seconds / 1e6 : 0;
  std::printf(
      "[ result ] %s: %s\n[ result ] %s: %s\n[ result ] %s: %s\n"
      "[ result ] %s: host counted %lu/%u burst frames (%lu bytes) in %.3f s = %.2f MB/s;"
      " tap rx_packets +%lu%s\n",
      c.label, rtt.c_str(), c.label, tx.c_str(), c.label, rx.c_str(), c.label,
      static_cast<unsigned long>(counts.distinct), kBurst, static_cast<unsigned long>(counts.bytes),
      counts.seconds, host_mbs, static_cast<unsigned long>(rx1 - rx0),
      env->ns().empty() ? " (root namespace)" : "");
}

INSTANTIATE_TEST_SUITE_P(
    FacesAndKicks, NetworkGuest,
    ::testing::Values(NetCase{"modern", true, "", "modern_ioeventfd"},
                      NetCase{"modern", false, "", "modern_userspace_kicks"},
                      NetCase{"legacy", true, "", "legacy_ioeventfd"},
                      NetCase{"legacy", false, "", "legacy_userspace_kicks"},
                      // VIRTIO_NET_F_MRG_RXBUF: the 12-byte header on the legacy face too.
                      NetCase{"legacy", true, "net.mrg=on", "legacy_mrg_rxbuf"},
                      // EVENT_IDX kicks (as Linux does), with more host frames than receive
                      // buffers: the device must publish avail_event when it runs dry.
                      NetCase{"modern", true, "net.event_idx=on", "modern_event_idx"}),
    [](const auto& info) { return std::string(info.param.label); });

// ---- configuration errors ----

ProcessResult runWithNet(const std::string& net) {
  return runEmber({"run", "--kernel", EMBER_TESTGUEST, "--net", net});
}

TEST(NetErrorPaths, MalformedMac) {
  expectOneErrorLine(runWithNet("tap=embx0,mac=zz:54:00:12:34:56"), "mac");
  expectOneErrorLine(runWithNet("tap=embx0,mac=52:54:00:12:34"), "mac");
  expectOneErrorLine(runWithNet("tap=embx0,mac=52:54:00:12:34:56:78"), "mac");
  expectOneErrorLine(runWithNet("tap=embx0,mac="), "mac");
}

TEST(NetErrorPaths, MulticastMac) {
  expectOneErrorLine(runWithNet("tap=embx0,mac=01:00:5e:00:00:01"), "multicast");
}

TEST(NetErrorPaths, BadMtu) {
  expectOneErrorLine(runWithNet("tap=embx0,mtu=10"), "mtu");
  expectOneErrorLine(runWithNet("tap=embx0,mtu=70000"), "mtu");
  expectOneErrorLine(runWithNet("tap=embx0,mtu=lots"), "mtu");
}

TEST(NetErrorPaths, MissingTapName) {
  expectOneErrorLine(runWithNet("mac=52:54:00:12:34:56"), "tap=");
  expectOneErrorLine(runWithNet("tap="), "tap");
}

TEST(NetErrorPaths, UnknownNetOption) {
  expectOneErrorLine(runWithNet("tap=embx0,frobnicate=1"), "frobnicate");
  expectOneErrorLine(runWithNet("tap=embx0,ioeventfd=maybe"), "ioeventfd");
}

TEST(NetErrorPaths, BadVhostValue) {
  expectOneErrorLine(runWithNet("tap=embx0,vhost=maybe"), "vhost");
}

TEST(NetErrorPaths, TapNameTooLong) {
  expectOneErrorLine(runWithNet("tap=averyveryverylongname0"), "averyveryverylongname0");
}

// The checks below need a namespace to create interfaces in; they run the same without one.
class NetErrorInNamespace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveRootAndTun()) GTEST_SKIP() << "needs root and /dev/net/tun";
    std::string why;
    env_ = NetEnv::create(&why);
    ASSERT_TRUE(env_) << why;
  }
  ProcessResult run(const std::string& net) {
    return runProcess(env_->wrap({EMBER_BINARY, "run", "--kernel", EMBER_TESTGUEST, "--net", net}));
  }
  std::unique_ptr<NetEnv> env_;
};

TEST_F(NetErrorInNamespace, BusyTap) {
  // A tap without IFF_MULTI_QUEUE takes one reader: hold it open here.
  int held = -1;
  std::string why;
  ASSERT_TRUE(inNamespace(
      env_->ns(),
      [&](std::string* w) {
        held = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (held < 0) return *w = "open /dev/net/tun", false;
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, env_->tap().c_str(), IFNAMSIZ - 1);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        if (ioctl(held, TUNSETIFF, &ifr) != 0)
          return *w = std::string("TUNSETIFF: ") + std::strerror(errno), false;
        return true;
      },
      &why))
      << why;
  auto r = run("tap=" + env_->tap());
  close(held);
  expectOneErrorLine(r, env_->tap());
  EXPECT_NE(r.err.find("busy"), std::string::npos) << r.err;
}

TEST_F(NetErrorInNamespace, InterfaceThatIsNotATap) {
  // The loopback device exists in every namespace; a tun-mode device is a tun, not a tap.
  std::string out;
  std::string tun = env_->ns().empty() ? env_->tap() + "u" : "tun0";
  ASSERT_EQ(shell(env_->prefix() + kIp + " tuntap add " + tun + " mode tun", &out), 0) << out;
  auto r = run("tap=lo");
  expectOneErrorLine(r, "lo");
  EXPECT_NE(r.err.find("not a tap"), std::string::npos) << r.err;
  r = run("tap=" + tun);
  if (env_->ns().empty()) (void)shell(std::string(kIp) + " link del " + tun);
  expectOneErrorLine(r, tun);
  EXPECT_NE(r.err.find("not a tap"), std::string::npos) << r.err;
}

// vhost=on where /dev/vhost-net cannot be opened (this host's kernel has no vhost_net; the L1
// has it, tools/linux-boot --vhost) is one error line naming the device and the module; auto
// falls back to ember's own device with one log line, and the guest runs.
TEST_F(NetErrorInNamespace, VhostOnWithoutVhostNetFailsAndAutoFallsBack) {
  if (::access("/dev/vhost-net", F_OK) == 0) GTEST_SKIP() << "this host has /dev/vhost-net";
  auto r = run("tap=" + env_->tap() + ",vhost=on");
  expectOneErrorLine(r, "/dev/vhost-net");
  EXPECT_NE(r.err.find("modprobe vhost_net"), std::string::npos) << r.err;
  auto a =
      runProcess(env_->wrap({EMBER_BINARY, "run", "--kernel", EMBER_TESTGUEST, "--net",
                             "tap=" + env_->tap() + ",vhost=auto", "--cmdline", "tests=pci-enum"}));
  EXPECT_EQ(a.status, 0) << describe(a);
  EXPECT_NE(a.err.find("using ember's own virtio-net"), std::string::npos) << a.err;
  EXPECT_NE(a.out.find("1 passed, 0 failed"), std::string::npos) << a.out;
}

// --vsock: a CID that is not a guest's, an unknown option, the hybrid (uds=) form, and (where
// this host has no vhost_vsock) the missing device, each one error line.
TEST(VsockErrorPaths, EachRefusalIsOneLine) {
  auto vsock = [](const std::string& spec) {
    return runEmber({"run", "--kernel", EMBER_TESTGUEST, "--vsock", spec});
  };
  expectOneErrorLine(vsock("cid=2"), "cid '2'");
  expectOneErrorLine(vsock("cid=lots"), "cid 'lots'");
  expectOneErrorLine(vsock("port=3"), "port=3");
  expectOneErrorLine(vsock("cid=3,uds=/tmp/v.sock"), "uds=");
  if (::access("/dev/vhost-vsock", F_OK) != 0) {
    auto r = vsock("cid=3");
    expectOneErrorLine(r, "/dev/vhost-vsock");
    EXPECT_NE(r.err.find("modprobe"), std::string::npos) << r.err;
  }
}

TEST(BalloonErrorPaths, BalloonNotSmallerThanMemory) {
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "256M", "--balloon", "256M"}),
      "--balloon");
  expectOneErrorLine(
      runEmber({"run", "--kernel", EMBER_TESTGUEST, "--memory", "256M", "--balloon", "1G"}),
      "--balloon");
}

TEST(BalloonErrorPaths, MalformedBalloonSize) {
  expectOneErrorLine(runEmber({"run", "--kernel", EMBER_TESTGUEST, "--balloon", "lots"}),
                     "--balloon");
}

}  // namespace
}  // namespace ember::test
