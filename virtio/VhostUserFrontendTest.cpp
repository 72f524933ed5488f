// VhostUserFrontend against a fake backend on a socketpair (its own thread): the message order
// and payloads of a whole device set-up, the memfd and eventfds passed as SCM_RIGHTS (the backend
// sees the guest's bytes and signals our eventfd through what it got), GET_VRING_BASE, REPLY_ACK,
// and a backend that refuses, stays silent, answers wrongly or hangs up mid-run.
// test-labels: threaded
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "virtio/VhostUserFrontend.h"
#include "virtio/testing/FakeVhostUserBackend.h"

namespace ember::virtio {
namespace {

using testing::FakeVhostUserBackend;
using vhost_user::Request;

GuestMemory sharedMemory() {
  GuestRegionSpec specs[] = {{GuestAddress(0), 1 << 20}, {GuestAddress(1ULL << 32), 1 << 20}};
  return std::move(GuestMemory::create(specs, MemoryBacking::SharedMemfd)).value();
}

TEST(VhostUserFrontend, AWholeSetUpInOrderWithItsFds) {
  FakeVhostUserBackend::Options o;
  o.features = (1ULL << 32) | vhost_user::kFeatureProtocolFeatures;
  o.protocol_features = vhost_user::kProtocolReplyAck;
  o.vring_progress = 5;
  FakeVhostUserBackend backend(o);
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend");
  GuestMemory mem = sharedMemory();
  ASSERT_TRUE(mem.writeObj<uint64_t>(GuestAddress((1ULL << 32) + 16), 0xfeedface).ok());
  auto kick = std::move(EventFd::create()).value();
  auto call = std::move(EventFd::create()).value();

  ASSERT_TRUE(fe.setOwner());
  auto features = fe.getFeatures();
  ASSERT_TRUE(features) << features.error().message;
  EXPECT_EQ(*features, o.features);
  EXPECT_EQ(*fe.getProtocolFeatures(), vhost_user::kProtocolReplyAck);
  ASSERT_TRUE(fe.setProtocolFeatures(vhost_user::kProtocolReplyAck));
  ASSERT_TRUE(fe.setFeatures(1ULL << 32));
  ASSERT_TRUE(fe.setMemTable(mem));
  ASSERT_TRUE(fe.setVringNum(1, 128));
  ASSERT_TRUE(fe.setVringAddr(1, 0x1000, 0x3000, 0x2000));
  ASSERT_TRUE(fe.setVringBase(1, 7));
  ASSERT_TRUE(fe.setVringKick(1, kick.fd()));
  ASSERT_TRUE(fe.setVringCall(1, call.fd()));
  ASSERT_TRUE(fe.setVringEnable(1, true));
  auto base = fe.getVringBase(1);
  ASSERT_TRUE(base) << base.error().message;
  EXPECT_EQ(*base, 12u) << "the backend's next available index";

  auto m = backend.messages();
  std::vector<Request> order;
  for (const auto& msg : m) order.push_back(msg.request);
  EXPECT_EQ(order, (std::vector<Request>{
                       Request::SetOwner, Request::GetFeatures, Request::GetProtocolFeatures,
                       Request::SetProtocolFeatures, Request::SetFeatures, Request::SetMemTable,
                       Request::SetVringNum, Request::SetVringAddr, Request::SetVringBase,
                       Request::SetVringKick, Request::SetVringCall, Request::SetVringEnable,
                       Request::GetVringBase}));
  // Before SET_PROTOCOL_FEATURES took effect nothing asked for a reply; after it every command
  // does (the GET requests have replies of their own).
  EXPECT_FALSE(m[0].flags & vhost_user::kFlagNeedReply);
  EXPECT_FALSE(m[3].flags & vhost_user::kFlagNeedReply);
  EXPECT_TRUE(m[4].flags & vhost_user::kFlagNeedReply);
  EXPECT_FALSE(m[12].flags & vhost_user::kFlagNeedReply);
  for (const auto& msg : m) EXPECT_EQ(msg.flags & 0x3, vhost_user::kVersion);

  // SET_MEM_TABLE: two regions, the memfd with each; the backend maps it and sees guest bytes.
  const auto& table = m[5];
  ASSERT_EQ(table.fds.size(), 2u);
  ASSERT_EQ(table.payload.size(), 8u + 2 * 32);
  EXPECT_EQ(loadLe<uint32_t>(std::span(table.payload).subspan(0, 4)), 2u);
  auto region1 = std::span(table.payload).subspan(8 + 32, 32);
  EXPECT_EQ(loadLe<uint64_t>(region1.subspan(0, 8)), 1ULL << 32);
  EXPECT_EQ(loadLe<uint64_t>(region1.subspan(8, 8)), 1u << 20);
  EXPECT_EQ(loadLe<uint64_t>(region1.subspan(16, 8)),
            reinterpret_cast<uint64_t>(mem.regions()[1].mapping.data()));
  uint64_t offset = loadLe<uint64_t>(region1.subspan(24, 8));
  EXPECT_EQ(offset, 1u << 20);
  void* view = ::mmap(nullptr, 1 << 20, PROT_READ, MAP_SHARED, table.fds[1]->get(),
                      static_cast<off_t>(offset));
  ASSERT_NE(view, MAP_FAILED);
  uint64_t seen;
  std::memcpy(&seen, static_cast<uint8_t*>(view) + 16, 8);
  EXPECT_EQ(seen, 0xfeedfaceu);
  ::munmap(view, 1 << 20);

  // SET_VRING_ADDR's field order is desc, used, avail.
  const auto& addr = m[7].payload;
  EXPECT_EQ(loadLe<uint64_t>(std::span(addr).subspan(8, 8)), 0x1000u);
  EXPECT_EQ(loadLe<uint64_t>(std::span(addr).subspan(16, 8)), 0x3000u);
  EXPECT_EQ(loadLe<uint64_t>(std::span(addr).subspan(24, 8)), 0x2000u);
  // SET_VRING_KICK: the ring index in the u64, and our eventfd: a signal through the backend's
  // copy is one we can read.
  EXPECT_EQ(loadLe<uint64_t>(m[9].payload), 1u);
  ASSERT_EQ(m[9].fds.size(), 1u);
  ASSERT_EQ(eventfd_write(m[9].fds[0]->get(), 1), 0);
  EXPECT_EQ(kick.consume(), 1u);
  ASSERT_EQ(m[10].fds.size(), 1u);
  ASSERT_EQ(eventfd_write(m[10].fds[0]->get(), 1), 0);
  EXPECT_EQ(call.consume(), 1u);
}

TEST(VhostUserFrontend, NoFdMeansTheNoFdBit) {
  FakeVhostUserBackend backend({});
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend");
  ASSERT_TRUE(fe.setVringKick(2, -1));
  ASSERT_TRUE(backend.waitFor(1));
  auto m = backend.messages();
  EXPECT_EQ(loadLe<uint64_t>(m[0].payload), 2u | vhost_user::kVringNoFd);
  EXPECT_TRUE(m[0].fds.empty());
}

TEST(VhostUserFrontend, ARefusedCommandIsAnErrorNamingIt) {
  FakeVhostUserBackend::Options o;
  o.refuse = Request::SetVringAddr;
  FakeVhostUserBackend backend(o);
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend");
  ASSERT_TRUE(fe.setProtocolFeatures(vhost_user::kProtocolReplyAck));
  ASSERT_TRUE(fe.setVringNum(0, 64));
  auto r = fe.setVringAddr(0, 1, 2, 3);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("refused SET_VRING_ADDR"), std::string::npos)
      << r.error().message;
}

TEST(VhostUserFrontend, ABackendThatHangsUpMidRun) {
  FakeVhostUserBackend::Options o;
  o.features = 1ULL << 32;
  o.hang_up_after = 2;
  FakeVhostUserBackend backend(o);
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend");
  ASSERT_TRUE(fe.setOwner());
  ASSERT_TRUE(fe.getFeatures());
  ASSERT_TRUE(backend.waitFor(2));
  auto r = fe.getVringBase(0);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.find("closed the connection") != std::string::npos ||
              r.error().message.find("sending") != std::string::npos)
      << r.error().message;
}

TEST(VhostUserFrontend, ABackendThatDoesNotAnswerTimesOut) {
  FakeVhostUserBackend::Options o;
  o.silent = Request::GetFeatures;
  FakeVhostUserBackend backend(o);
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend", /*timeout_ms=*/200);
  auto r = fe.getFeatures();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("did not answer GET_FEATURES within 200 ms"), std::string::npos)
      << r.error().message;
}

TEST(VhostUserFrontend, AWrongReplyIsAnError) {
  FakeVhostUserBackend::Options o;
  o.wrong_reply = true;
  FakeVhostUserBackend backend(o);
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend");
  auto r = fe.getFeatures();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("answered GET_FEATURES with request 999"), std::string::npos)
      << r.error().message;
}

TEST(VhostUserFrontend, PrivateMemoryCannotBeShared) {
  FakeVhostUserBackend backend({});
  VhostUserFrontend fe(backend.takeFrontendEnd(), "fake backend");
  GuestRegionSpec specs[] = {{GuestAddress(0), 1 << 20}};
  auto mem = std::move(GuestMemory::create(specs)).value();
  auto r = fe.setMemTable(mem);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("memfd"), std::string::npos);
}

}  // namespace
}  // namespace ember::virtio
