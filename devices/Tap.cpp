// /dev/net/tun set-up.
#include "devices/Tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

namespace ember::devices {

Result<Tap> Tap::open(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return makeError(Errc::InvalidArgument, "--net tap={}: an interface name is 1-{} characters",
                     name, IFNAMSIZ - 1);
  }
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return Error::fromErrno(Errc::NotFound,
                            "--net: cannot open /dev/net/tun (is the tun module "
                            "loaded?)");
  }
  Tap tap;
  tap.fd_.reset(fd);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    std::string hint;
    if (err == EPERM || err == EACCES) {
      hint = fmt::format(
          "; create it first (ip tuntap add {} mode tap user $USER) or run ember "
          "with CAP_NET_ADMIN",
          name);
    } else if (err == EBUSY) {
      hint = "; another process has it open (taps without IFF_MULTI_QUEUE take one reader)";
    } else if (err == EINVAL) {
      hint = "; an interface of that name exists but is not a tap";
    }
    return Error{err == EBUSY ? Errc::Busy : Errc::Io,
                 fmt::format("--net tap={}: cannot attach: {}{}", name, std::strerror(err), hint),
                 err};
  }
  tap.name_ = ifr.ifr_name;
  return tap;
}

Result<void> Tap::setVnetHeaderSize(int bytes) {
  if (::ioctl(fd_.get(), TUNSETVNETHDRSZ, &bytes) < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("tap {}: TUNSETVNETHDRSZ {}", name_, bytes));
  }
  return {};
}

Result<void> Tap::setOffload(unsigned flags) {
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("tap {}: TUNSETOFFLOAD {:#x}", name_, flags));
  }
  return {};
}

}  // namespace ember::devices
