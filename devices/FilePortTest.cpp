// FilePort: the file is created (or truncated) at start and holds every byte the guest wrote, in
// order; a path that cannot be created is an error naming it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "devices/FilePort.h"

namespace ember::devices {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(FilePort, HoldsWhatTheGuestWrote) {
  char tmpl[] = "/tmp/ember-fileport-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::write(fd, "old content", 11);
  ::close(fd);
  {
    auto port = FilePort::create(tmpl);
    ASSERT_TRUE(port) << port.error().message;
    EXPECT_TRUE((*port)->hostOpen());
    (*port)->write(bytes("first "));
    (*port)->write(bytes("second"));
    EXPECT_EQ((*port)->failedBytes(), 0u);
  }
  std::ifstream in(tmpl);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "first second") << "truncated at start, then every byte in order";
  ::unlink(tmpl);
}

TEST(FilePort, ALimitKeepsTheFirstBytesAndCountsTheRest) {
  char tmpl[] = "/tmp/ember-fileport-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    auto port = FilePort::create(tmpl, 8);
    ASSERT_TRUE(port) << port.error().message;
    (*port)->write(bytes("exit "));
    (*port)->write(bytes("7\nexit 9\n"));
    (*port)->write(bytes("more"));
    EXPECT_EQ((*port)->droppedBytes(), 10u);
    EXPECT_EQ((*port)->failedBytes(), 0u);
  }
  std::ifstream in(tmpl);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "exit 7\ne");
  ::unlink(tmpl);
}

TEST(FilePort, APathThatCannotBeCreatedIsAnError) {
  auto port = FilePort::create("/nonexistent-ember-dir/port.log");
  ASSERT_FALSE(port);
  EXPECT_NE(port.error().message.find("/nonexistent-ember-dir/port.log"), std::string::npos);
}

}  // namespace
}  // namespace ember::devices
