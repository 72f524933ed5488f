// virtio-vsock on vhost-vsock (see VirtioVsock.h).
#include "devices/VirtioVsock.h"

#include <cerrno>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"

namespace ember::devices {

using namespace virtio;

namespace {
constexpr uint64_t kSeqpacket = 1ULL << 1;  // 5.10.3 VIRTIO_VSOCK_F_SEQPACKET
// What ember offers where vhost-vsock reports it: the ring features and seqpacket sockets.
// VERSION_1 is the transport's to add.
constexpr uint64_t kOffered = feature::kIndirectDesc | feature::kEventIdx | kSeqpacket;
}  // namespace

Result<void> VirtioVsock::checkCid(uint64_t cid) {
  if (cid < kFirstGuestCid || cid > 0xfffffffeULL) {
    return makeError(Errc::InvalidArgument,
                     "--vsock: cid '{}' is not a guest's CID, 3 to 4294967294 (0-2 are the "
                     "hypervisor's, the local and the host's, 4294967295 is VMADDR_CID_ANY)",
                     cid);
  }
  return {};
}

Result<std::unique_ptr<VirtioVsock>> VirtioVsock::create(uint64_t cid, const std::string& device) {
  EMBER_TRY(checkCid(cid));
  std::string what = fmt::format("--vsock cid={}", cid);
  auto vhost = EMBER_TRY(VhostKernel::open(device, what));
  EMBER_TRY(vhost.setOwner());
  uint64_t features = EMBER_TRY(vhost.getFeatures());
  if (auto r = vhost.vsockSetGuestCid(cid); !r) {
    if (r.error().sys_errno == EADDRINUSE) {
      return makeError(Errc::Busy, "{}: the CID is in use by another VM on this host; give another",
                       what);
    }
    return makeError(r.error().code, "{}: {}", what, r.error().message);
  }
  return std::unique_ptr<VirtioVsock>(new VirtioVsock(std::move(vhost), cid, features));
}

VirtioVsock::~VirtioVsock() {
  (void)reset();
}

uint64_t VirtioVsock::features() const {
  return kOffered & vhost_features_;
}

void VirtioVsock::readConfig(uint32_t offset, std::span<uint8_t> data) {
  // 5.10.4 struct virtio_vsock_config: le64 guest_cid.
  uint8_t image[8] = {};
  storeLe<uint64_t>(std::span(image), cid_);
  readConfigBytes(image, offset, data);
}

Result<void> VirtioVsock::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  if (!activation.queue(kRxQueue) || !activation.queue(kTxQueue)) {
    return makeError(Errc::Guest, "{} activated without its rx and tx queues", name());
  }
  act_ = std::move(activation);
  // vhost-vsock takes the negotiated bits it knows (VERSION_1 among them), nothing else.
  Result<void> r = vhost_.setFeatures(act_->features & vhost_features_);
  if (r) r = vhost_.setMemTable(*act_->memory);
  for (uint16_t q : {kRxQueue, kTxQueue}) {
    if (r) r = rings_.start(vhost_, *act_->memory, *act_->host, q, *act_->queue(q));
  }
  if (r) r = vhost_.vsockSetRunning(true);
  if (!r) {
    ++counters_.errors;
    stopLocked();
    act_.reset();
    return makeError(r.error().code, "{}: {}", name(), r.error().message);
  }
  running_ = true;
  log::debug("{}: rx and tx handed to vhost-vsock", name());
  return {};
}

void VirtioVsock::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  // ioeventfd=off: ember carries rx and tx kicks over. The event queue's buffers wait for an
  // event ember never sends.
  if (act_ && queue != kEventQueue) (void)rings_.forwardKick(queue);
}

void VirtioVsock::stopLocked() {
  if (running_) {
    if (auto r = vhost_.vsockSetRunning(false); !r) log::warn("{}: {}", name(), r.error().message);
    running_ = false;
  }
  if (act_) rings_.stopAll(&vhost_, *act_->host, name());
}

QueueSet VirtioVsock::reset() {
  std::lock_guard lock(mutex_);
  if (!act_) return {};
  stopLocked();
  return releaseQueues(act_);
}

DeviceCounters VirtioVsock::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace ember::devices
