// BlockFile: opening disk images (size, read-only, O_DIRECT probe) and the errors for missing,
// too small or unsuitable files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/BlockFile.h"
#include "virtio/testing/TempFile.h"

namespace ember::devices {
namespace {

using virtio::testing::TempFile;

TEST(BlockFile, OpensAnImage) {
  TempFile file(1 << 20);
  ASSERT_TRUE(file.ok());
  auto f = BlockFile::open(file.path(), false);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->sizeBytes(), 1u << 20);
  EXPECT_FALSE(f->readOnly());
  EXPECT_GE(f->bufferedFd(), 0);
  EXPECT_EQ(f->path(), file.path());
  if (f->directFd() >= 0) {
    EXPECT_TRUE(f->directAlignment() == 512 || f->directAlignment() == 4096);
  }
  EXPECT_TRUE(f->sync().ok());
  auto ro = BlockFile::open(file.path(), true);
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE(ro->readOnly());
  EXPECT_TRUE(ro->sync().ok());
}

TEST(BlockFile, MissingTooSmallOrNotAFile) {
  auto missing = BlockFile::open("/nonexistent/ember-disk.img", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  EXPECT_NE(missing.error().message.find("/nonexistent/ember-disk.img"), std::string::npos);

  TempFile tiny(511);
  ASSERT_TRUE(tiny.ok());
  auto small = BlockFile::open(tiny.path(), true);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().message.find("smaller than one"), std::string::npos);

  auto dir = BlockFile::open("/tmp", true);
  EXPECT_FALSE(dir.ok());
  auto chr = BlockFile::open("/dev/null", true);
  ASSERT_FALSE(chr.ok());
  EXPECT_NE(chr.error().message.find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace ember::devices
