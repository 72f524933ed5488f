// AioEngine: vectored reads and writes on a real file, completion reaping and waiting, errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "devices/AioEngine.h"
#include "virtio/testing/TempFile.h"

namespace ember::devices {
namespace {

using virtio::testing::imageByte;
using virtio::testing::TempFile;

struct Fd {
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

TEST(AioEngine, VectoredWriteThenReadRoundTrip) {
  TempFile file(64 * 1024);
  ASSERT_TRUE(file.ok());
  auto engine = AioEngine::create(8);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  Fd fd(::open(file.path().c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_GE(fd.fd, 0);

  std::vector<uint8_t> a(1000, 0x11), b(24, 0x22);
  iovec wiov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  iocb wcb{};
  (*engine)->prepare(&wcb, fd.fd, true, wiov, 4096);
  iocb* batch[1] = {&wcb};
  auto n = (*engine)->submit(batch);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1u);
  auto done = (*engine)->wait(1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].cb, &wcb);
  EXPECT_EQ(done[0].result, 1024);
  auto on_disk = file.read(4096, 1024);
  EXPECT_EQ(std::vector<uint8_t>(on_disk.begin(), on_disk.begin() + 1000), a);
  EXPECT_EQ(on_disk[1000], 0x22);

  std::vector<uint8_t> back(512);
  iovec riov[1] = {{back.data(), back.size()}};
  iocb rcb{};
  (*engine)->prepare(&rcb, fd.fd, false, riov, 0);
  iocb* rbatch[1] = {&rcb};
  ASSERT_TRUE((*engine)->submit(rbatch).ok());
  // The eventfd fires; reap collects without blocking.
  pollfd p{(*engine)->eventFd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1);
  std::vector<AioCompletion> reaped;
  for (int i = 0; i < 1000 && reaped.empty(); ++i) {
    reaped = (*engine)->reap();
    if (reaped.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_EQ(reaped[0].result, 512);
  for (size_t i = 0; i < back.size(); ++i) ASSERT_EQ(back[i], imageByte(i)) << i;
  EXPECT_TRUE((*engine)->reap().empty());
}

TEST(AioEngine, ReadPastEndIsShortAndBadFdIsAnError) {
  TempFile file(4096);
  ASSERT_TRUE(file.ok());
  auto engine = AioEngine::create(4);
  ASSERT_TRUE(engine.ok());
  Fd fd(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<uint8_t> buf(8192);
  iovec iov[1] = {{buf.data(), buf.size()}};
  iocb cb{};
  (*engine)->prepare(&cb, fd.fd, false, iov, 0);
  iocb* batch[1] = {&cb};
  ASSERT_TRUE((*engine)->submit(batch).ok());
  auto done = (*engine)->wait(1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, 4096) << "short read at end of file";

  // Writing through a read-only descriptor fails either at submission or in the completion.
  iocb wcb{};
  (*engine)->prepare(&wcb, fd.fd, true, iov, 0);
  iocb* wbatch[1] = {&wcb};
  auto n = (*engine)->submit(wbatch);
  if (n.ok() && *n == 1) {
    auto w = (*engine)->wait(1);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_LT(w[0].result, 0);
  } else {
    EXPECT_FALSE(n.ok());
  }
  std::span<iocb*> none;
  EXPECT_EQ(*(*engine)->submit(none), 0u);
}

}  // namespace
}  // namespace ember::devices
