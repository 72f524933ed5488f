// virtio-fs: configuration, feature negotiation and the rings' handover to a vhost-user backend.
#include "devices/VirtioFs.h"

#include <algorithm>
#include <cstring>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;
namespace vu = virtio::vhost_user;

namespace {
// The ring features ember passes through; VERSION_1 the transport adds on the modern face.
constexpr uint64_t kPassedFeatures = feature::kIndirectDesc | feature::kEventIdx;
}  // namespace

Result<std::unique_ptr<VirtioFs>> VirtioFs::create(UniqueFd socket, std::string tag,
                                                   std::string backend_name,
                                                   const GuestMemory& memory, EventLoop* loop) {
  if (tag.empty() || tag.size() > kTagSize) {
    return makeError(Errc::InvalidArgument, "virtio-fs tag '{}' must be 1 to {} bytes", tag,
                     kTagSize);
  }
  auto frontend = std::make_unique<VhostUserFrontend>(std::move(socket), std::move(backend_name));
  EMBER_TRY(frontend->setOwner());
  uint64_t features = EMBER_TRY(frontend->getFeatures());
  if (!(features & feature::kVersion1)) {
    return makeError(Errc::Unsupported, "{} does not offer VIRTIO_F_VERSION_1", frontend->name());
  }
  bool protocol = features & vu::kFeatureProtocolFeatures;
  if (protocol) {
    uint64_t offered = EMBER_TRY(frontend->getProtocolFeatures());
    EMBER_TRY(frontend->setProtocolFeatures(offered & vu::kProtocolReplyAck));
  }
  EMBER_TRY(frontend->setMemTable(memory));
  std::unique_ptr<VirtioFs> dev(
      new VirtioFs(std::move(tag), std::move(frontend), memory, features, protocol));
  if (loop != nullptr) {
    // Only a hang-up: the replies on this socket are read by the requests that wait for them.
    auto* raw = dev.get();
    dev->hangup_reg_ = EMBER_TRY(
        loop->add(dev->frontend_->fd(), EPOLLRDHUP, [raw](uint32_t) { raw->onBackendGone(); }));
  }
  return dev;
}

VirtioFs::VirtioFs(std::string tag, std::unique_ptr<VhostUserFrontend> frontend,
                   const GuestMemory& memory, uint64_t backend_features, bool protocol_features)
    : tag_(std::move(tag)),
      frontend_(std::move(frontend)),
      memory_(memory),
      backend_features_(backend_features),
      protocol_features_(protocol_features),
      rings_(kQueues) {}

VirtioFs::~VirtioFs() {
  hangup_reg_.reset();
  (void)reset();
}

uint64_t VirtioFs::features() const {
  return backend_features_ & kPassedFeatures;
}

void VirtioFs::readConfig(uint32_t offset, std::span<uint8_t> data) {
  // 5.11.4 struct virtio_fs_config: u8 tag[36] (UTF-8, NUL-padded when shorter), le32
  // num_request_queues.
  uint8_t image[kTagSize + 4] = {};
  std::memcpy(image, tag_.data(), std::min(tag_.size(), kTagSize));
  storeLe<uint32_t>(std::span(image).subspan(kTagSize, 4), kQueues - 1);
  readConfigBytes(image, offset, data);
}

void VirtioFs::onBackendGone() {
  hangup_reg_.reset();  // epoll reports a hang-up for ever: stop watching
  if (gone_.exchange(true)) return;
  log::warn("{}: {} went away; the file system is gone until ember restarts", name(),
            frontend_->name());
  std::lock_guard lock(mutex_);
  ++counters_.errors;
  if (act_) {
    act_->host->needsReset(frontend_->name() + " went away");
  }
}

Result<void> VirtioFs::activate(Activation activation) {
  std::lock_guard lock(mutex_);
  if (gone_) {
    return makeError(Errc::Io, "{}: {} is gone", name(), frontend_->name());
  }
  if (!activation.queue(0) || !activation.queue(1)) {
    return makeError(Errc::Guest, "{} activated without both its queues", name());
  }
  act_ = std::move(activation);
  uint64_t features = act_->features | (protocol_features_ ? vu::kFeatureProtocolFeatures : 0);
  Result<void> r = frontend_->setFeatures(features);
  for (uint16_t i = 0; r && i < kQueues; ++i) {
    r = rings_.start(*frontend_, memory_, *act_->host, i, *act_->queue(i));
    if (r && protocol_features_) {
      // With VHOST_USER_F_PROTOCOL_FEATURES the rings start disabled.
      r = frontend_->setVringEnable(i, true);
    }
  }
  if (!r) {
    ++counters_.errors;
    stopRingsLocked();
    act_.reset();
    return makeError(r.error().code, "{}: {}", name(), r.error().message);
  }
  log::debug("{}: rings handed to {}", name(), frontend_->name());
  return {};
}

void VirtioFs::notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (act_ && rings_.forwardKick(queue)) {
    ++counters_.requests;  // ioeventfd=off: ember carried the kick over
  }
}

void VirtioFs::stopRingsLocked() {
  rings_.stopAll(gone_ ? nullptr : frontend_.get(), *act_->host, name());
}

QueueSet VirtioFs::reset() {
  std::lock_guard lock(mutex_);
  if (!act_) {
    return {};
  }
  stopRingsLocked();
  return releaseQueues(act_);
}

DeviceCounters VirtioFs::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace ember::devices
