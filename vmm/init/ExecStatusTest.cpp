// ExecStatus: the status lines, their parsing, wait statuses and ember exec's exit statuses.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <string>

#include "vmm/init/ExecStatus.h"

namespace ember::init {
namespace {

std::string parseError(const std::string& line) {
  std::string error;
  EXPECT_FALSE(ExecStatus::parse(line, &error).has_value()) << line;
  return error;
}

TEST(ExecStatus, EncodesEachKindAsOneLine) {
  EXPECT_EQ(ExecStatus::exited(0).encode(), "exit 0\n");
  EXPECT_EQ(ExecStatus::exited(255).encode(), "exit 255\n");
  EXPECT_EQ(ExecStatus::signaled(9).encode(), "signal 9\n");
  EXPECT_EQ(ExecStatus::execFailed(ENOENT).encode(), "exec-failed 2\n");
  EXPECT_EQ(ExecStatus::setupError("mounting virtio-fs tag \"root\": No such device").encode(),
            "setup-error mounting virtio-fs tag \"root\": No such device\n");
}

TEST(ExecStatus, SetupErrorMessagesBecomeOneLine) {
  ExecStatus status = ExecStatus::setupError("first\nsecond\r\nthird\n");
  EXPECT_EQ(status.message(), "first second  third ");
  EXPECT_EQ(status.encode(), "setup-error first second  third \n");
}

TEST(ExecStatus, ParsesWhatItEncodes) {
  for (const ExecStatus& status :
       {ExecStatus::exited(0), ExecStatus::exited(7), ExecStatus::exited(255),
        ExecStatus::signaled(1), ExecStatus::signaled(64), ExecStatus::execFailed(1),
        ExecStatus::execFailed(EACCES), ExecStatus::execFailed(4095),
        ExecStatus::setupError("a message: with: colons and  spaces"),
        ExecStatus::setupError("")}) {
    std::string error;
    std::optional<ExecStatus> back = ExecStatus::parse(status.encode(), &error);
    ASSERT_TRUE(back.has_value()) << status.encode() << ": " << error;
    EXPECT_EQ(*back, status);
  }
  std::optional<ExecStatus> exited = ExecStatus::parse("exit 42\n", nullptr);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->kind(), ExecStatus::Kind::Exited);
  EXPECT_EQ(exited->value(), 42);
}

TEST(ExecStatus, RefusesMalformedLines) {
  EXPECT_EQ(parseError(""), "status line does not end in a newline");
  EXPECT_EQ(parseError("exit 0"), "status line does not end in a newline");
  EXPECT_EQ(parseError("exit 0\nexit 1\n"), "status has more than one line");
  EXPECT_EQ(parseError("exit\n"), "status line \"exit\" has no value");
  EXPECT_EQ(parseError("done 0\n"), "unknown status \"done\"");
  EXPECT_EQ(parseError("EXIT 0\n"), "unknown status \"EXIT\"");
}

TEST(ExecStatus, RefusesNumbersOutOfRangeOrNotCanonical) {
  EXPECT_EQ(parseError("exit 256\n"), "status \"exit\" needs a number from 0 to 255, not \"256\"");
  for (const char* line : {"exit -1\n", "exit 07\n", "exit  1\n", "exit 1 \n", "exit 0x1\n",
                           "exit 99999999999999999999\n", "exit \n"}) {
    EXPECT_NE(parseError(line).find("needs a number from 0 to 255"), std::string::npos) << line;
  }
  EXPECT_EQ(parseError("signal 0\n"), "status \"signal\" needs a number from 1 to 64, not \"0\"");
  EXPECT_EQ(parseError("signal 65\n"), "status \"signal\" needs a number from 1 to 64, not \"65\"");
  EXPECT_EQ(parseError("exec-failed 0\n"),
            "status \"exec-failed\" needs a number from 1 to 4095, not \"0\"");
  EXPECT_EQ(parseError("exec-failed 4096\n"),
            "status \"exec-failed\" needs a number from 1 to 4095, not \"4096\"");
}

TEST(ExecStatus, FromWaitStatusTellsExitsFromSignalsAndIgnoresStops) {
  EXPECT_EQ(ExecStatus::fromWaitStatus(W_EXITCODE(3, 0)), ExecStatus::exited(3));
  EXPECT_EQ(ExecStatus::fromWaitStatus(W_EXITCODE(0, 0)), ExecStatus::exited(0));
  EXPECT_EQ(ExecStatus::fromWaitStatus(W_EXITCODE(0, SIGKILL)), ExecStatus::signaled(SIGKILL));
  EXPECT_EQ(ExecStatus::fromWaitStatus(W_STOPCODE(SIGSTOP)), std::nullopt);
  EXPECT_EQ(ExecStatus::fromWaitStatus(0xffff), std::nullopt);  // __W_CONTINUED
}

TEST(ExecStatus, ExitStatusFollowsTimeoutAndDockerRun) {
  EXPECT_EQ(exitStatusFor(ExecStatus::exited(0)), 0);
  EXPECT_EQ(exitStatusFor(ExecStatus::exited(7)), 7);
  EXPECT_EQ(exitStatusFor(ExecStatus::exited(255)), 255);
  EXPECT_EQ(exitStatusFor(ExecStatus::signaled(SIGKILL)), 137);
  EXPECT_EQ(exitStatusFor(ExecStatus::signaled(SIGTERM)), 143);
  EXPECT_EQ(exitStatusFor(ExecStatus::execFailed(ENOENT)), 127);
  EXPECT_EQ(exitStatusFor(ExecStatus::execFailed(EACCES)), 126);
  EXPECT_EQ(exitStatusFor(ExecStatus::execFailed(ENOEXEC)), 126);
  EXPECT_EQ(exitStatusFor(ExecStatus::setupError("no root")), 125);
}

}  // namespace
}  // namespace ember::init
