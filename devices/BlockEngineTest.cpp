// The BlockEngine contract, for each engine (libaio, io_uring, sync) against a real file: vectored
// reads and writes, flush, a read past the end of the file, errors from the kernel (a write
// through a read-only descriptor, an fdatasync of a pipe), many more requests than the ring or
// context holds, and drain().
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include "devices/BlockEngine.h"
#include "kvm/UniqueFd.h"
#include "virtio/testing/TempFile.h"

namespace ember::devices {
namespace {

using virtio::testing::imageByte;
using virtio::testing::TempFile;

class BlockEngineTest : public ::testing::TestWithParam<BlockEngineKind> {
 protected:
  std::unique_ptr<BlockEngine> make(unsigned depth, unsigned ring = 0) {
    auto e = createBlockEngine(GetParam(), depth, ring);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    return e.ok() ? std::move(*e) : nullptr;
  }

  // Waits on the eventfd and reaps until `count` completions have arrived (submitting again
  // after each round, as the device does, so that waiting requests get their turn).
  static std::map<uint32_t, int64_t> collect(BlockEngine& e, size_t count) {
    std::map<uint32_t, int64_t> got;
    std::vector<BlockCompletion> out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
      pollfd p{e.eventFd(), POLLIN, 0};
      if (::poll(&p, 1, 1000) != 1) continue;
      out.clear();
      e.reap(out);
      for (const auto& c : out) {
        EXPECT_TRUE(got.emplace(c.tag, c.result).second) << "tag " << c.tag << " completed twice";
      }
      e.submit();
    }
    return got;
  }
};

TEST_P(BlockEngineTest, VectoredWriteFlushAndReadRoundTrip) {
  TempFile file(64 * 1024);
  ASSERT_TRUE(file.ok());
  auto e = make(8);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->kind(), GetParam());
  UniqueFd fd(::open(file.path().c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());

  std::vector<uint8_t> a(1000, 0x11), b(24, 0x22);
  iovec wiov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  e->enqueue(BlockEngineRequest{3, BlockOp::Write, fd.get(), wiov, 4096});
  e->submit();
  auto w = collect(*e, 1);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w.at(3), 1024);
  auto on_disk = file.read(4096, 1024);
  EXPECT_EQ(std::vector<uint8_t>(on_disk.begin(), on_disk.begin() + 1000), a);
  EXPECT_EQ(on_disk[1000], 0x22);

  e->enqueue(BlockEngineRequest{5, BlockOp::Flush, fd.get(), {}, 0});
  e->submit();
  auto f = collect(*e, 1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f.at(5), 0) << "fdatasync";

  std::vector<uint8_t> back(512), back2(512);
  iovec riov[2] = {{back.data(), back.size()}, {back2.data(), back2.size()}};
  e->enqueue(BlockEngineRequest{7, BlockOp::Read, fd.get(), riov, 0});
  e->submit();
  auto r = collect(*e, 1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r.at(7), 1024);
  for (size_t i = 0; i < back.size(); ++i) ASSERT_EQ(back[i], imageByte(i)) << i;
  for (size_t i = 0; i < back2.size(); ++i) ASSERT_EQ(back2[i], imageByte(512 + i)) << i;
  std::vector<BlockCompletion> none;
  e->reap(none);
  EXPECT_TRUE(none.empty());
}

TEST_P(BlockEngineTest, ReadPastTheEndOfTheFileIsShort) {
  TempFile file(4096);
  ASSERT_TRUE(file.ok());
  auto e = make(4);
  ASSERT_NE(e, nullptr);
  UniqueFd fd(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<uint8_t> buf(8192), beyond(512);
  iovec iov[1] = {{buf.data(), buf.size()}};
  iovec iov2[1] = {{beyond.data(), beyond.size()}};
  e->enqueue(BlockEngineRequest{0, BlockOp::Read, fd.get(), iov, 0});
  e->enqueue(BlockEngineRequest{1, BlockOp::Read, fd.get(), iov2, 1 << 20});
  e->submit();
  auto r = collect(*e, 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r.at(0), 4096) << "a short read, reported as it is";
  EXPECT_EQ(r.at(1), 0) << "a read wholly past the end";
}

TEST_P(BlockEngineTest, KernelErrorsComeBackAsNegativeErrno) {
  TempFile file(4096);
  ASSERT_TRUE(file.ok());
  auto e = make(4);
  ASSERT_NE(e, nullptr);
  UniqueFd ro(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  UniqueFd pr(pipefd[0]), pw(pipefd[1]);
  std::vector<uint8_t> buf(512, 0x33);
  iovec iov[1] = {{buf.data(), buf.size()}};
  e->enqueue(BlockEngineRequest{0, BlockOp::Write, ro.get(), iov, 0});
  e->enqueue(BlockEngineRequest{1, BlockOp::Flush, pw.get(), {}, 0});  // fdatasync of a pipe
  e->enqueue(BlockEngineRequest{2, BlockOp::Read, ro.get(), iov, 0});  // the others still run
  e->submit();
  auto r = collect(*e, 3);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.at(0), -EBADF);
  EXPECT_EQ(r.at(1), -EINVAL);
  EXPECT_EQ(r.at(2), 512);
  EXPECT_EQ(file.read(0, 1)[0], imageByte(0)) << "nothing was written";
}

TEST_P(BlockEngineTest, ManyMoreRequestsThanTheRingHoldsAllComplete) {
  constexpr unsigned kRequests = 256;
  TempFile file(kRequests * 512);
  ASSERT_TRUE(file.ok());
  auto e = make(kRequests, 4);  // a ring (or AIO context) of 4: most requests wait their turn
  ASSERT_NE(e, nullptr);
  UniqueFd fd(::open(file.path().c_str(), O_RDWR | O_CLOEXEC));
  std::vector<std::vector<uint8_t>> bufs(kRequests);
  std::vector<iovec> iovs(kRequests);
  for (unsigned i = 0; i < kRequests; ++i) {
    bufs[i].assign(512, static_cast<uint8_t>(i));
    iovs[i] = {bufs[i].data(), bufs[i].size()};
    e->enqueue(
        BlockEngineRequest{i, BlockOp::Write, fd.get(), std::span(&iovs[i], 1), uint64_t{i} * 512});
  }
  e->submit();
  auto r = collect(*e, kRequests);
  ASSERT_EQ(r.size(), kRequests) << "no request may be lost when the ring is full";
  for (unsigned i = 0; i < kRequests; ++i) {
    EXPECT_EQ(r.at(i), 512) << i;
    auto got = file.read(uint64_t{i} * 512, 512);
    ASSERT_EQ(got, bufs[i]) << "request " << i;
  }
}

TEST_P(BlockEngineTest, DrainWaitsForSubmittedRequestsAndDiscardsEverything) {
  TempFile file(1 << 20);
  ASSERT_TRUE(file.ok());
  auto e = make(64, 8);
  ASSERT_NE(e, nullptr);
  UniqueFd fd(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<std::vector<uint8_t>> bufs(64, std::vector<uint8_t>(16384));
  std::vector<iovec> iovs(64);
  for (unsigned i = 0; i < 64; ++i) {
    iovs[i] = {bufs[i].data(), bufs[i].size()};
    e->enqueue(BlockEngineRequest{i, BlockOp::Read, fd.get(), std::span(&iovs[i], 1),
                                  uint64_t{i} * 16384});
  }
  e->submit();
  e->drain();
  std::vector<BlockCompletion> out;
  e->reap(out);
  EXPECT_TRUE(out.empty()) << out.size() << " completions survived drain()";
  pollfd p{e->eventFd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the eventfd is clear after drain()";
  // The engine is usable afterwards.
  e->enqueue(BlockEngineRequest{0, BlockOp::Read, fd.get(), std::span(&iovs[0], 1), 0});
  e->submit();
  auto r = collect(*e, 1);
  EXPECT_EQ(r.at(0), 16384);
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockEngineTest,
                         ::testing::Values(BlockEngineKind::LibAio, BlockEngineKind::IoUring,
                                           BlockEngineKind::Sync),
                         [](const auto& info) {
                           std::string n = blockEngineName(info.param);
                           return n == "io_uring" ? std::string("io_uring") : n;
                         });

TEST(BlockEngineNames, AreQemusAioValues) {
  EXPECT_STREQ(blockEngineName(BlockEngineKind::LibAio), "libaio");
  EXPECT_STREQ(blockEngineName(BlockEngineKind::IoUring), "io_uring");
  EXPECT_STREQ(blockEngineName(BlockEngineKind::Sync), "sync");
}

}  // namespace
}  // namespace ember::devices
