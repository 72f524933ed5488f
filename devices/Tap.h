// A Linux tap interface used as a virtio-net backend: opened through /dev/net/tun with
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking. An existing tap is attached to (permission
// comes from its owner settings); a missing one is created, which needs CAP_NET_ADMIN.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class Tap {
 public:
  static Result<Tap> open(const std::string& name);

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  // TUNSETVNETHDRSZ: the header that precedes every frame in both directions.
  Result<void> setVnetHeaderSize(int bytes);
  // TUNSETOFFLOAD: what the reader (the guest) accepts: TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6.
  Result<void> setOffload(unsigned flags);

 private:
  UniqueFd fd_;
  std::string name_;
};

}  // namespace ember::devices
