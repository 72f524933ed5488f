// vhost-net's set-up, handover and take-back (see VhostNet.h).
#include "devices/VhostNet.h"

#include "devices/VirtioNet.h"
#include "kvm/Log.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

namespace {
// The features vhost-net itself must implement for ember to offer them: how the rings are laid
// out and read (2.7: indirect descriptors, event index; ANY_LAYOUT is implied by VERSION_1) and
// the receive header's num_buffers (MRG_RXBUF). VERSION_1 is the transport's to offer, and vhost
// must support it too on the modern face. The rest (checksum and segmentation offloads, MAC,
// MTU, status) are the tap's or ember's configuration space.
constexpr uint64_t kServedByVhost = net::kMrgRxbuf | virtio::feature::kIndirectDesc |
                                    virtio::feature::kEventIdx | virtio::feature::kVersion1;
}  // namespace

Result<VhostNet> VhostNet::open(const std::string& what, const std::string& device) {
  auto vhost = EMBER_TRY(virtio::VhostKernel::open(device, what));
  EMBER_TRY(vhost.setOwner());
  uint64_t features = EMBER_TRY(vhost.getFeatures());
  if (!(features & virtio::feature::kVersion1)) {
    return makeError(Errc::Unsupported, "{}: {} does not offer VIRTIO_F_VERSION_1", what, device);
  }
  return VhostNet(std::move(vhost), features);
}

uint64_t VhostNet::offerable(uint64_t offered, uint64_t vhost) {
  return offered & (~kServedByVhost | vhost);
}

Result<void> VhostNet::start(virtio::Activation& activation, int tap_fd) {
  // Only the bits vhost-net knows: the offloads were given to the tap (TUNSETOFFLOAD), and
  // vhost refuses a bit it does not support.
  EMBER_TRY(vhost_.setFeatures(activation.features & kServedByVhost & vhost_features_));
  EMBER_TRY(vhost_.setMemTable(*activation.memory));
  started_ = true;
  for (uint16_t q : {VirtioNet::kRxQueue, VirtioNet::kTxQueue}) {
    EMBER_TRY(rings_.start(vhost_, *activation.memory, *activation.host, q, *activation.queue(q)));
    EMBER_TRY(vhost_.netSetBackend(q, tap_fd));
  }
  return {};
}

void VhostNet::stop(virtio::VirtioDeviceHost& host, const std::string& device) {
  if (!started_) return;
  started_ = false;
  for (uint16_t q : {VirtioNet::kRxQueue, VirtioNet::kTxQueue}) {
    if (!rings_.started(q)) continue;
    // No backend: vhost-net stops moving frames on the queue before its base is read.
    if (auto r = vhost_.netSetBackend(q, -1); !r) log::warn("{}: {}", device, r.error().message);
  }
  rings_.stopAll(&vhost_, host, device);
}

}  // namespace ember::devices
