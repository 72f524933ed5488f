// VirtioFs through the virtio-pci transport against a fake vhost-user backend (its own thread):
// what the device tells the backend when it is made, when the driver activates it and when it
// resets it; its configuration; a kick forwarded to the backend, the backend's interrupt reaching
// the guest; and a backend that goes away.
// test-labels: threaded
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include "devices/VirtioFs.h"
#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "virtio/testing/FakeVhostUserBackend.h"
#include "virtio/testing/MockDriver.h"
#include "virtio/testing/TransportHarness.h"

namespace ember::devices {
namespace {

using namespace virtio::testing;
using virtio::vhost_user::Request;
namespace vu = virtio::vhost_user;

constexpr uint64_t kBackendFeatures = virtio::feature::kVersion1 | virtio::feature::kEventIdx |
                                      vu::kFeatureProtocolFeatures | (1ULL << 40);

struct FsRig {
  explicit FsRig(FakeVhostUserBackend::Options o = defaults())
      : loop(std::move(EventLoop::create()).value()),
        backend(o),
        h(
            [this](const GuestMemory& mem) -> std::unique_ptr<virtio::VirtioDevice> {
              auto d = VirtioFs::create(backend.takeFrontendEnd(), "hostroot", "fake virtiofsd",
                                        mem, loop.get());
              EXPECT_TRUE(d) << d.error().message;
              fs = d->get();
              return std::move(*d);
            },
            MemoryBacking::SharedMemfd, loop.get()),
        hiprio(h.mem, 16, 0x10000),
        request(h.mem, 16, 0x60000) {}
  static FakeVhostUserBackend::Options defaults() {
    FakeVhostUserBackend::Options o;
    o.features = kBackendFeatures;
    o.protocol_features = vu::kProtocolReplyAck | (1ULL << 9);
    return o;
  }
  std::vector<Request> requests(size_t from = 0) {
    std::vector<Request> out;
    auto m = backend.messages();
    for (size_t i = from; i < m.size(); ++i) out.push_back(m[i].request);
    return out;
  }
  void init() {
    h.modernInit(virtio::feature::kVersion1 | virtio::feature::kEventIdx,
                 {hiprio.geometry(), request.geometry()});
  }

  std::unique_ptr<EventLoop> loop;
  FakeVhostUserBackend backend;
  VirtioFs* fs = nullptr;
  TransportHarness h;
  MockDriver hiprio, request;
};

TEST(VirtioFs, MadeWithTheBackendsFeaturesAndTheMemoryTable) {
  FsRig r;
  EXPECT_EQ(r.requests(), (std::vector<Request>{
                              Request::SetOwner, Request::GetFeatures, Request::GetProtocolFeatures,
                              Request::SetProtocolFeatures, Request::SetMemTable}));
  auto m = r.backend.messages();
  EXPECT_EQ(loadLe<uint64_t>(m[3].payload), vu::kProtocolReplyAck) << "only REPLY_ACK is taken";
  EXPECT_EQ(m[4].fds.size(), r.h.mem.regions().size());
  // Of the backend's features only the ring features pass (VERSION_1 the transport adds).
  EXPECT_EQ(r.fs->features(), virtio::feature::kEventIdx);
  EXPECT_EQ(r.h.modernDeviceFeatures(), virtio::feature::kEventIdx | virtio::feature::kVersion1);
  // 5.11.4: the tag, NUL-padded, then num_request_queues.
  std::string tag;
  for (uint64_t i = 0; i < 8; ++i) {
    tag.push_back(
        static_cast<char>(r.h.modernRead(virtio::VirtioPciTransport::kDeviceOffset + i, 1)));
  }
  EXPECT_EQ(tag, std::string("hostroot"));
  EXPECT_EQ(r.h.modernRead(virtio::VirtioPciTransport::kDeviceOffset + 8, 1), 0u);
  EXPECT_EQ(r.h.modernRead(virtio::VirtioPciTransport::kDeviceOffset + 36, 4), 1u);
  EXPECT_EQ(r.fs->queueCount(), 2);
}

TEST(VirtioFs, ActivationHandsEveryRingToTheBackendAndResetTakesThemBack) {
  FsRig r;
  size_t made = r.backend.messages().size();
  r.init();
  ASSERT_FALSE(r.h.modernStatus() & virtio::status::kNeedsReset);
  auto ring = [](Request last) {
    return std::vector<Request>{Request::SetVringNum,  Request::SetVringAddr, Request::SetVringBase,
                                Request::SetVringKick, Request::SetVringCall, last};
  };
  std::vector<Request> want{Request::SetFeatures};
  for (int i = 0; i < 2; ++i) {
    auto one = ring(Request::SetVringEnable);
    want.insert(want.end(), one.begin(), one.end());
  }
  EXPECT_EQ(r.requests(made), want);
  auto m = r.backend.messages();
  EXPECT_EQ(loadLe<uint64_t>(m[made].payload),
            virtio::feature::kVersion1 | virtio::feature::kEventIdx | vu::kFeatureProtocolFeatures);
  // Ring 1's addresses are where its rings are in ember's mapping of guest memory.
  const auto& addr = m[made + 8].payload;
  ASSERT_EQ(loadLe<uint32_t>(std::span(addr).subspan(0, 4)), 1u);
  auto host = [&](uint64_t gpa) {
    return reinterpret_cast<uint64_t>(r.h.mem.slice(GuestAddress(gpa), 1).value().data());
  };
  EXPECT_EQ(loadLe<uint64_t>(std::span(addr).subspan(8, 8)), host(r.request.geometry().desc));
  EXPECT_EQ(loadLe<uint64_t>(std::span(addr).subspan(16, 8)), host(r.request.geometry().used));
  EXPECT_EQ(loadLe<uint64_t>(std::span(addr).subspan(24, 8)), host(r.request.geometry().avail));

  // No ioeventfd here: ember forwards the guest's kick through its own eventfd.
  const auto& kick = m[made + 10];
  ASSERT_EQ(kick.fds.size(), 1u);
  eventfd_t v = 0;
  ASSERT_EQ(eventfd_read(kick.fds[0]->get(), &v), 0);
  EXPECT_EQ(v, 1u) << "activation passes on buffers the driver queued before DRIVER_OK";
  r.h.kickModern(1);
  ASSERT_EQ(eventfd_read(kick.fds[0]->get(), &v), 0);
  EXPECT_EQ(v, 1u) << "the guest's kick";
  EXPECT_EQ(r.fs->counters().requests, 3u) << "one per ring at activation, then the kick";

  // The backend's interrupt: MSI-X is off, so the loop raises the ISR and INTx.
  const auto& call = m[made + 11];
  ASSERT_EQ(call.fds.size(), 1u);
  ASSERT_EQ(eventfd_write(call.fds[0]->get(), 1), 0);
  r.loop->runOnce(1000);
  EXPECT_TRUE(r.h.intx->level());

  // Reset: each ring stopped with GET_VRING_BASE; the interrupt is ember's again.
  size_t before = r.backend.messages().size();
  r.h.commonWrite(virtio::common::kDeviceStatus, 1, 0);
  EXPECT_EQ(r.requests(before),
            (std::vector<Request>{Request::GetVringBase, Request::GetVringBase}));
  EXPECT_FALSE(r.h.t->interrupt().handedOver(0));
  EXPECT_FALSE(r.h.t->interrupt().handedOver(1));
}

TEST(VirtioFs, ABackendThatGoesAwayMakesTheDeviceNeedAReset) {
  auto o = FsRig::defaults();
  o.hang_up_after = 5 + 1 + 6 + 6;  // made, activated, then gone
  FsRig r(o);
  r.init();
  ASSERT_TRUE(r.backend.waitFor(18));
  log::ScopedLogCapture logs;
  for (int i = 0; i < 20 && !r.fs->backendGone(); ++i) r.loop->runOnce(100);
  EXPECT_TRUE(r.fs->backendGone());
  EXPECT_TRUE(r.h.modernStatus() & virtio::status::kNeedsReset);
  EXPECT_TRUE(logs.contains("fake virtiofsd went away")) << ::testing::PrintToString(logs.lines());
  // A driver that resets and tries again is refused: the file system is gone.
  r.init();
  EXPECT_TRUE(r.h.modernStatus() & virtio::status::kNeedsReset);
}

TEST(VirtioFs, ARefusingBackendFailsActivationAndLeavesNothingHandedOver) {
  auto o = FsRig::defaults();
  o.refuse = Request::SetVringCall;
  FsRig r(o);
  r.init();
  EXPECT_TRUE(r.h.modernStatus() & virtio::status::kNeedsReset);
  EXPECT_FALSE(r.h.t->interrupt().handedOver(0));
  EXPECT_EQ(r.fs->counters().errors, 1u);
}

TEST(VirtioFs, ATagMustFitTheConfiguration) {
  FakeVhostUserBackend backend(FsRig::defaults());
  GuestMemory mem = makeTestMemory(MemoryBacking::SharedMemfd);
  EXPECT_FALSE(
      VirtioFs::create(backend.takeFrontendEnd(), std::string(37, 't'), "b", mem, nullptr));
  FakeVhostUserBackend backend2(FsRig::defaults());
  EXPECT_FALSE(VirtioFs::create(backend2.takeFrontendEnd(), "", "b", mem, nullptr));
}

}  // namespace
}  // namespace ember::devices
