// virtio-console ports, their data paths and the control queues.
#include "devices/VirtioConsole.h"

#include <algorithm>
#include <vector>

#include "kvm/LittleEndian.h"
#include "virtio/QueueProcessing.h"
#include "virtio/VirtioSpec.h"

namespace ember::devices {

using namespace virtio;

namespace {
constexpr uint32_t kMaxTransmitChunk = 64 * 1024;
// Each port sets off at most a handful of control messages before the driver answers; this is a
// backstop, not a limit the protocol can reach.
constexpr size_t kMaxPendingControl = 8 * VirtioConsole::kMaxPorts;

}  // namespace

// A port's way back into the device.
class VirtioConsole::Host : public PortHost {
 public:
  Host(VirtioConsole& console, uint32_t port) : console_(console), port_(port) {}
  size_t pushInput(std::span<const uint8_t> bytes) override {
    return console_.pushInput(port_, bytes);
  }
  void setHostOpen(bool open) override { console_.setHostOpen(port_, open); }
  void outputRoom() override { console_.outputRoom(port_); }

 private:
  VirtioConsole& console_;
  uint32_t port_;
};

namespace {
std::vector<ControlPort> controlPorts(const std::vector<VirtioConsole::Port>& ports) {
  std::vector<ControlPort> out;
  for (const auto& p : ports) {
    if (p.backend) {
      out.push_back(ControlPort{p.name, p.console, p.backend->hostOpen()});
    } else {
      out.push_back(ControlPort{"", false, false});  // not offered
    }
  }
  return out;
}
}  // namespace

VirtioConsole::VirtioConsole(OutputSink output)
    : VirtioConsole([&] {
        std::vector<Port> ports;
        ports.push_back(Port{"", true, std::make_unique<StreamPort>(std::move(output))});
        return ports;
      }()) {}

VirtioConsole::VirtioConsole(std::vector<Port> ports)
    : ports_(std::move(ports)), control_(controlPorts(ports_)) {
  for (uint32_t p = 0; p < ports_.size(); ++p) {
    hosts_.push_back(std::make_unique<Host>(*this, p));
    if (ports_[p].backend) {
      ports_[p].backend->attach(*hosts_[p]);
    }
  }
}

VirtioConsole::~VirtioConsole() {
  // The backends go first: a backend serving a socket on the event loop calls back into hosts_.
  for (auto& p : ports_) {
    p.backend.reset();
  }
}

uint16_t VirtioConsole::deviceType() const {
  return device_type::kConsole;
}

uint64_t VirtioConsole::features() const {
  return feature::kIndirectDesc | feature::kEventIdx | (multiport() ? kFeatureMultiport : 0);
}

uint16_t VirtioConsole::queueCount() const {
  return multiport() ? static_cast<uint16_t>(2 * (ports_.size() + 1)) : 2;
}

void VirtioConsole::readConfig(uint32_t offset, std::span<uint8_t> data) {
  // 5.3.4 struct virtio_console_config: cols, rows (no VIRTIO_CONSOLE_F_SIZE: zero),
  // max_nr_ports (with MULTIPORT), emerg_wr (no EMERG_WRITE: zero).
  uint8_t image[12] = {};
  if (multiport()) {
    storeLe<uint32_t>(std::span(image).subspan(4, 4), static_cast<uint32_t>(ports_.size()));
  }
  readConfigBytes(image, offset, data);
}

void VirtioConsole::setInputRoomCallback(std::function<void()> cb) {
  if (auto* stream = dynamic_cast<StreamPort*>(ports_[0].backend.get())) {
    stream->setRoomCallback(std::move(cb));
  }
}

bool VirtioConsole::live(uint32_t port) const {
  return act_ && port < ports_.size() && ports_[port].backend &&
         (port == 0 || multiport_negotiated_);
}

std::optional<uint32_t> VirtioConsole::portOfQueue(uint16_t queue) const {
  if (queue < 2) return 0;
  if (queue == kControlReceiveQueue || queue == kControlTransmitQueue) return std::nullopt;
  return (queue - 2) / 2;
}

Result<void> VirtioConsole::activate(Activation activation) {
  std::vector<PortBackend*> waiting;
  {
    std::lock_guard lock(mutex_);
    bool multiport = this->multiport() && (activation.features & kFeatureMultiport);
    if (multiport &&
        (!activation.queue(kControlReceiveQueue) || !activation.queue(kControlTransmitQueue))) {
      return makeError(Errc::Guest,
                       "virtio-console activated with MULTIPORT but without its "
                       "control queues");
    }
    if (!multiport && activation.queue(kTransmitQueue) == nullptr) {
      return makeError(Errc::Guest, "virtio-console activated without its transmit queue");
    }
    multiport_negotiated_ = multiport;
    act_ = std::move(activation);
    control_.reset();
    pending_control_.clear();
    for (uint32_t p = 0; p < ports_.size(); ++p) {
      if (live(p)) waiting.push_back(ports_[p].backend.get());
    }
  }
  for (PortBackend* b : waiting) {
    b->room();  // input that waited for the device can flow
  }
  return {};
}

void VirtioConsole::notify(uint16_t queue) {
  if (queue == kControlReceiveQueue || queue == kControlTransmitQueue) {
    std::vector<std::pair<PortBackend*, bool>> opened;
    {
      std::lock_guard lock(mutex_);
      if (!act_ || !multiport_negotiated_) return;
      if (queue == kControlTransmitQueue) controlFromDriverLocked(opened);
      sendControlLocked();
    }
    for (auto [backend, open] : opened) backend->guestOpen(open);
    return;
  }
  uint32_t port = *portOfQueue(queue);
  if (queue == receiveQueue(port)) {
    // New receive buffers: the port's pending host input can flow again.
    PortBackend* backend = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (live(port)) backend = ports_[port].backend.get();
    }
    if (backend) backend->room();
    return;
  }
  std::lock_guard lock(mutex_);
  if (live(port)) {
    transmitLocked(port);
  }
}

void VirtioConsole::transmitLocked(uint32_t port) {
  const GuestMemory& mem = *act_->memory;
  PortBackend& backend = *ports_[port].backend;
  std::vector<uint8_t> bytes;
  bool intact = serveQueueWhile(
      *act_, transmitQueue(port), [&] { return backend.canTake(); },
      [&](const ChainBuffers& bufs) -> ChainOutcome {
        EMBER_TRY(writeChainLocked(backend, mem, bufs, bytes));
        ++counters_.requests;
        return completeChain(0);
      });
  counters_.errors += intact ? 0 : 1;
}

Result<void> VirtioConsole::writeChainLocked(PortBackend& backend, const GuestMemory& mem,
                                             const ChainBuffers& bufs,
                                             std::vector<uint8_t>& bytes) {
  for (const auto& seg : bufs.readable) {
    uint32_t len = std::min(seg.len, kMaxTransmitChunk);
    bytes.resize(len);
    EMBER_TRY(mem.read(GuestAddress(seg.addr), bytes));
    backend.write(bytes);
    counters_.bytes += len;
    counters_.dropped += seg.len - len;
  }
  return {};
}

void VirtioConsole::outputRoom(uint32_t port) {
  std::lock_guard lock(mutex_);
  if (live(port)) {
    transmitLocked(port);
  }
}

void VirtioConsole::writeQueuedOutputLocked() {
  // What the driver queued and a slow backend had not taken yet: written out now, read only
  // (nothing reaches guest memory once the reset completes), so that the guest's last output
  // before a power-off is not lost. The backends bound what they keep (ConsoleOutput).
  if (!act_) return;
  const GuestMemory& mem = *act_->memory;
  std::vector<uint8_t> bytes;
  for (uint32_t port = 0; port < ports_.size(); ++port) {
    SplitQueue* q = live(port) ? act_->queue(transmitQueue(port)) : nullptr;
    if (q == nullptr) continue;
    for (uint16_t n = 0; n < q->size(); ++n) {
      auto chain = q->pop();
      if (!chain || !*chain) break;
      auto bufs = collectChain(**chain);
      if (!bufs || !writeChainLocked(*ports_[port].backend, mem, *bufs, bytes)) break;
    }
  }
}

void VirtioConsole::controlFromDriverLocked(std::vector<std::pair<PortBackend*, bool>>& opened) {
  const GuestMemory& mem = *act_->memory;
  bool intact =
      serveQueue(*act_, kControlTransmitQueue, [&](const ChainBuffers& bufs) -> ChainOutcome {
        // The driver's messages are the 8-byte header alone; anything past it is ignored.
        uint8_t message[ControlMessage::kHeaderSize];
        size_t got = 0;
        for (const auto& seg : bufs.readable) {
          size_t n = std::min<size_t>(seg.len, sizeof message - got);
          if (n == 0) break;
          EMBER_TRY(mem.read(GuestAddress(seg.addr), std::span(message + got, n)));
          got += n;
        }
        auto outcome = control_.fromDriver(std::span<const uint8_t>(message, got));
        if (!outcome.refused.empty() && warnings_.allow()) {
          log::warn("{}: {}; ignored", name(), outcome.refused);
        }
        for (auto& reply : outcome.replies) queueControlLocked(std::move(reply));
        if (outcome.guest_open_port) {
          opened.emplace_back(ports_[*outcome.guest_open_port].backend.get(), outcome.guest_open);
        }
        ++counters_.requests;
        return completeChain(0);
      });
  counters_.errors += intact ? 0 : 1;
}

void VirtioConsole::queueControlLocked(ControlMessage message) {
  if (message.event == console_event::kPortOpen) {
    // Only the latest open state of a port matters to the driver.
    std::erase_if(pending_control_, [&](const ControlMessage& m) {
      return m.event == console_event::kPortOpen && m.id == message.id;
    });
  }
  if (pending_control_.size() >= kMaxPendingControl) {
    ++counters_.dropped;
    return;
  }
  pending_control_.push_back(std::move(message));
}

void VirtioConsole::sendControlLocked() {
  SplitQueue* q = act_->queue(kControlReceiveQueue);
  if (q == nullptr) return;
  const GuestMemory& mem = *act_->memory;
  auto r = [&]() -> Result<void> {
    while (!pending_control_.empty()) {
      auto chain = EMBER_TRY(nextChain(*q));
      if (!chain) return {};  // the driver posts more buffers and kicks
      std::vector<uint8_t> bytes = pending_control_.front().encode();
      pending_control_.pop_front();
      uint32_t written = 0;
      if (chain->writableBytes() >= bytes.size()) {
        written = EMBER_TRY(fillWritable(mem, *chain, bytes));
      } else {
        ++counters_.dropped;  // a buffer too small for the message: the driver gets it empty
      }
      EMBER_TRY(q->pushUsed(chain->head, written));
      ++counters_.requests;
    }
    return {};
  }();
  act_->host->queueUsed(kControlReceiveQueue, *q);
  if (!r) {
    ++counters_.errors;
    act_->host->needsReset(r.error().message);
  }
}

size_t VirtioConsole::pushInput(uint32_t port, std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if (!live(port) || !act_->host->mayProcess()) {
    return 0;
  }
  SplitQueue* q = act_->queue(receiveQueue(port));
  if (q == nullptr) return 0;
  const GuestMemory& mem = *act_->memory;
  size_t taken = 0;
  auto r = [&]() -> Result<void> {
    while (taken < bytes.size()) {
      auto chain = EMBER_TRY(nextChain(*q));
      if (!chain) return {};  // no receive buffers: the backend keeps the rest and pauses
      uint32_t written = EMBER_TRY(fillWritable(mem, *chain, bytes.subspan(taken)));
      EMBER_TRY(q->pushUsed(chain->head, written));
      taken += written;
      ++counters_.requests;
      counters_.bytes += written;
    }
    return {};
  }();
  act_->host->queueUsed(receiveQueue(port), *q);
  if (!r) {
    ++counters_.errors;
    act_->host->needsReset(r.error().message);
  }
  return taken;
}

void VirtioConsole::setHostOpen(uint32_t port, bool open) {
  std::lock_guard lock(mutex_);
  auto message = control_.hostOpen(port, open);
  if (message && act_ && multiport_negotiated_) {
    queueControlLocked(std::move(*message));
    sendControlLocked();
  }
}

bool VirtioConsole::guestOpen(uint32_t port) const {
  std::lock_guard lock(mutex_);
  return control_.guestOpen(port);
}

DeviceCounters VirtioConsole::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

QueueSet VirtioConsole::reset() {
  std::lock_guard lock(mutex_);
  writeQueuedOutputLocked();
  control_.reset();
  pending_control_.clear();
  multiport_negotiated_ = false;
  return releaseQueues(act_);
}

Result<QueuePositions> VirtioConsole::saveState(StateWriter& w) {
  std::lock_guard lock(mutex_);
  control_.save(w);
  w.u32(static_cast<uint32_t>(pending_control_.size()));
  for (const auto& m : pending_control_) {
    w.u32(m.id);
    w.u16(m.event);
    w.u16(m.value);
    w.string(m.name);
  }
  return queuePositions(act_);
}

void VirtioConsole::loadState(StateReader& r) {
  std::lock_guard lock(mutex_);
  control_.load(r);
  // The device queues at most a few messages per port (ConsoleControl answers each once).
  uint32_t n = r.count("pending control messages", 8 * kMaxPorts);
  std::deque<ControlMessage> pending;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ControlMessage m;
    m.id = r.u32("control message port");
    m.event = r.u16("control message event");
    m.value = r.u16("control message value");
    m.name = r.string("control message name", 256);
    pending.push_back(std::move(m));
  }
  if (r.ok()) pending_control_ = std::move(pending);
}

}  // namespace ember::devices
