// Test-only harness around a VirtioPciTransport built without KVM: the mock guest memory, a fake
// MSI sink and INTx line, and register accessors that go through configRead/configWrite and the
// BAR regions exactly as a guest's config cycles and MMIO/PIO accesses would.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kvm/LittleEndian.h"
#include "pci/testing/PciTestSupport.h"
#include "virtio/VirtioPciTransport.h"
#include "virtio/testing/MockDriver.h"

namespace ember::virtio::testing {

class TransportHarness {
 public:
  using T = VirtioPciTransport;

  explicit TransportHarness(std::unique_ptr<VirtioDevice> device, TransportOptions options = {})
      : mem(makeTestMemory()) {
    build(std::move(device), options, nullptr);
  }
  // For a device that needs the guest memory to be built (a vhost-user device maps it): RAM of
  // `backing`, and `loop` for handed-over interrupts.
  using Factory = std::function<std::unique_ptr<VirtioDevice>(const GuestMemory&)>;
  TransportHarness(const Factory& make, MemoryBacking backing, EventLoop* loop,
                   TransportOptions options = {})
      : mem(makeTestMemory(backing)) {
    build(make(mem), options, loop);
  }
  void build(std::unique_ptr<VirtioDevice> device, TransportOptions options, EventLoop* loop) {
    auto sink = std::make_unique<pci::testing::FakeMsiSink>();
    msi = sink.get();
    TransportEnvironment env{nullptr, loop, &mem};
    t = std::make_unique<VirtioPciTransport>(std::move(device), env, std::move(sink), options);
    auto line = std::make_unique<pci::testing::FakeInterruptLine>();
    intx = line.get();
    t->setIntxLine(std::move(line));
    msix_cap = findCap(pci::cfg::kCapIdMsix, 0);
  }
  ~TransportHarness() { t.reset(); }  // the transport goes before the memory it points into

  // ---- PCI configuration space ----
  uint32_t cfgRead(uint16_t off, uint8_t size) { return t->configRead(off, size); }
  void cfgWrite(uint16_t off, uint8_t size, uint32_t v) { t->configWrite(off, size, v); }
  // The offset of the first capability with `id` (and, for vendor caps, cfg_type), or 0.
  uint8_t findCap(uint8_t id, uint8_t cfg_type) {
    uint8_t at = static_cast<uint8_t>(cfgRead(pci::cfg::kCapabilitiesPtr, 1));
    for (int guard = 0; at != 0 && guard < 48; ++guard) {
      if (cfgRead(at, 1) == id &&
          (id != pci::cfg::kCapIdVendor || cfgRead(at + 3, 1) == cfg_type)) {
        return at;
      }
      at = static_cast<uint8_t>(cfgRead(at + 1, 1));
    }
    return 0;
  }
  void setCommand(uint16_t value) { cfgWrite(pci::cfg::kCommand, 2, value); }
  void enableMsix(bool on, bool function_mask = false) {
    uint16_t v = static_cast<uint16_t>((on ? pci::MsixState::kControlEnable : 0) |
                                       (function_mask ? pci::MsixState::kControlFunctionMask : 0));
    cfgWrite(static_cast<uint16_t>(msix_cap + 2), 2, v);
  }
  // Programs and unmasks MSI-X table entry `vector` through BAR1.
  void programVector(uint16_t vector, uint64_t address = 0xfee00000, uint32_t data = 0x40) {
    uint64_t base = T::kMsixTableOffset + 16ULL * vector;
    barWrite(T::kMsixBar, base + 0, 4, static_cast<uint32_t>(address));
    barWrite(T::kMsixBar, base + 4, 4, static_cast<uint32_t>(address >> 32));
    barWrite(T::kMsixBar, base + 8, 4, data + vector);
    barWrite(T::kMsixBar, base + 12, 4, 0);  // unmask
  }

  // ---- BAR regions ----
  uint64_t barRead(int bar, uint64_t off, size_t size) {
    std::vector<uint8_t> d(size, 0xcc);
    t->bar(bar).region->read(off, d);
    return loadLe<uint64_t>(d);
  }
  void barWrite(int bar, uint64_t off, size_t size, uint64_t v) {
    std::vector<uint8_t> d(size);
    storeLe<uint64_t>(d, v);
    t->bar(bar).region->write(off, d);
  }
  uint64_t legacyRead(uint64_t off, size_t size) { return barRead(T::kLegacyBar, off, size); }
  void legacyWrite(uint64_t off, size_t size, uint64_t v) { barWrite(T::kLegacyBar, off, size, v); }
  uint64_t modernRead(uint64_t off, size_t size) { return barRead(T::kModernBar, off, size); }
  void modernWrite(uint64_t off, size_t size, uint64_t v) { barWrite(T::kModernBar, off, size, v); }
  uint64_t commonRead(uint64_t off, size_t size) {
    return modernRead(T::kCommonOffset + off, size);
  }
  void commonWrite(uint64_t off, size_t size, uint64_t v) {
    modernWrite(T::kCommonOffset + off, size, v);
  }

  uint8_t modernStatus() { return static_cast<uint8_t>(commonRead(common::kDeviceStatus, 1)); }
  uint8_t legacyStatus() { return static_cast<uint8_t>(legacyRead(legacy::kStatus, 1)); }
  void kickModern(uint16_t queue) {
    modernWrite(T::kNotifyOffset + T::kNotifyMultiplier * queue, 2, queue);
  }
  void kickLegacy(uint16_t queue) { legacyWrite(legacy::kQueueNotify, 2, queue); }

  // ---- driver initialisation (3.1.1) ----
  void modernNegotiate(uint64_t features) {
    commonWrite(common::kDeviceStatus, 1, 0);
    commonWrite(common::kDeviceStatus, 1, status::kAcknowledge);
    commonWrite(common::kDeviceStatus, 1, status::kAcknowledge | status::kDriver);
    commonWrite(common::kDriverFeatureSelect, 4, 0);
    commonWrite(common::kDriverFeature, 4, static_cast<uint32_t>(features));
    commonWrite(common::kDriverFeatureSelect, 4, 1);
    commonWrite(common::kDriverFeature, 4, static_cast<uint32_t>(features >> 32));
    commonWrite(common::kDeviceStatus, 1,
                status::kAcknowledge | status::kDriver | status::kFeaturesOk);
  }
  uint64_t modernDeviceFeatures() {
    commonWrite(common::kDeviceFeatureSelect, 4, 0);
    uint64_t lo = commonRead(common::kDeviceFeature, 4);
    commonWrite(common::kDeviceFeatureSelect, 4, 1);
    uint64_t hi = commonRead(common::kDeviceFeature, 4);
    return lo | (hi << 32);
  }
  void modernSetupQueue(uint16_t q, const QueueGeometry& g) {
    commonWrite(common::kQueueSelect, 2, q);
    commonWrite(common::kQueueSize, 2, g.size);
    commonWrite(common::kQueueDesc, 4, static_cast<uint32_t>(g.desc));
    commonWrite(common::kQueueDesc + 4, 4, static_cast<uint32_t>(g.desc >> 32));
    commonWrite(common::kQueueDriver, 4, static_cast<uint32_t>(g.avail));
    commonWrite(common::kQueueDriver + 4, 4, static_cast<uint32_t>(g.avail >> 32));
    commonWrite(common::kQueueDevice, 4, static_cast<uint32_t>(g.used));
    commonWrite(common::kQueueDevice + 4, 4, static_cast<uint32_t>(g.used >> 32));
    commonWrite(common::kQueueEnable, 2, 1);
  }
  void modernDriverOk() {
    commonWrite(common::kDeviceStatus, 1,
                status::kAcknowledge | status::kDriver | status::kFeaturesOk | status::kDriverOk);
  }
  // The whole modern sequence for the given queues (queue i gets geometries[i]).
  void modernInit(uint64_t features, const std::vector<QueueGeometry>& geometries) {
    modernNegotiate(features);
    for (size_t q = 0; q < geometries.size(); ++q) {
      modernSetupQueue(static_cast<uint16_t>(q), geometries[q]);
    }
    modernDriverOk();
  }
  void legacyInit(uint32_t features, const std::vector<uint32_t>& pfns) {
    legacyWrite(legacy::kStatus, 1, 0);
    legacyWrite(legacy::kStatus, 1, status::kAcknowledge);
    legacyWrite(legacy::kStatus, 1, status::kAcknowledge | status::kDriver);
    legacyWrite(legacy::kGuestFeatures, 4, features);
    for (size_t q = 0; q < pfns.size(); ++q) {
      legacyWrite(legacy::kQueueSelect, 2, q);
      legacyWrite(legacy::kQueuePfn, 4, pfns[q]);
    }
    legacyWrite(legacy::kStatus, 1, status::kAcknowledge | status::kDriver | status::kDriverOk);
  }

  GuestMemory mem;
  pci::testing::FakeMsiSink* msi = nullptr;
  pci::testing::FakeInterruptLine* intx = nullptr;
  std::unique_ptr<VirtioPciTransport> t;
  uint8_t msix_cap = 0;
};

}  // namespace ember::virtio::testing
