// FileOps: whole-file reads with their bound, whole writes, and mkdir -p.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "vmm/init/FileOps.h"
#include "vmm/init/testing/TempDir.h"

namespace ember::init {
namespace {

using testing::TempDir;

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(FileOps, ReadsAWholeFileUpToItsBound) {
  TempDir dir;
  std::string big(10000, 'x');
  std::string path = dir.write("big", big);
  InitResult<std::string> read = readFile(path, 10000);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value(), big);
  InitResult<std::string> over = readFile(path, 9999);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message, "reading " + path + ": more than 9999 bytes");
}

TEST(FileOps, ReadingADirectoryIsAnErrorNamingIt) {
  TempDir dir;
  InitResult<std::string> read = readFile(dir.path(), 100);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().message, "reading " + dir.path() + ": read: Is a directory");
}

TEST(FileOps, AMissingFileIsAnErrorNamingIt) {
  InitResult<std::string> read = readFile("/nonexistent/ember/job", 100);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().message, "opening /nonexistent/ember/job: No such file or directory");
}

TEST(FileOps, OpenedFilesAreCloseOnExec) {
  TempDir dir;
  InitResult<OwnedFd> fd = openFile(dir.write("f", "x"), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(::fcntl(fd.value().get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST(FileOps, WritesEverythingThroughAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  OwnedFd read_end(fds[0]);
  OwnedFd write_end(fds[1]);
  ASSERT_TRUE(writeAll(write_end.get(), "exit 0\n").ok());
  char buffer[16] = {};
  EXPECT_EQ(::read(read_end.get(), buffer, sizeof buffer), 7);
  EXPECT_STREQ(buffer, "exit 0\n");
  InitResult<void> bad = writeAll(-1, "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "write: Bad file descriptor");
}

TEST(FileOps, MakesDirectoriesWithTheirParentsAndAcceptsExistingOnes) {
  TempDir dir;
  std::string deep = dir.file("a/b/c");
  ASSERT_TRUE(makeDirectories(deep).ok());
  EXPECT_TRUE(isDirectory(deep));
  EXPECT_TRUE(makeDirectories(deep).ok());
  EXPECT_TRUE(makeDirectories(dir.file("a/b/")).ok());
  EXPECT_TRUE(makeDirectories("/").ok());
}

TEST(FileOps, AFileInTheWayOfADirectoryIsAnError) {
  TempDir dir;
  dir.write("a/file", "x");
  InitResult<void> made = makeDirectories(dir.file("a/file/below"));
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().message, "creating directory " + dir.file("a/file") + ": Not a directory");
  EXPECT_FALSE(makeDirectories(dir.file("a/file")).ok());
}

}  // namespace
}  // namespace ember::init
