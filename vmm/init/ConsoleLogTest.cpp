// ConsoleLog: the prefix, and steps written only when verbose.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "vmm/init/ConsoleLog.h"
#include "vmm/init/testing/TempDir.h"

namespace ember::init {
namespace {

using testing::TempDir;

std::string contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ConsoleLog, StepsAppearOnlyWhenVerboseAndEveryLineIsPrefixed) {
  TempDir dir;
  std::string console = dir.write("console", "");
  {
    ConsoleLog log = ConsoleLog::open(console);
    log.step("hidden step");
    log.always("setup-error no root");
    log.setVerbose(true);
    log.step("loading module /m/virtiofs.ko");
  }
  EXPECT_EQ(contents(console),
            "ember-init: setup-error no root\nember-init: loading module /m/virtiofs.ko\n");
}

TEST(ConsoleLog, WithoutAConsoleItLogsNowhere) {
  ConsoleLog log = ConsoleLog::open("/nonexistent/console");
  log.setVerbose(true);
  log.step("nothing to see");
  log.always("nor here");
  ConsoleLog silent;
  silent.always("nowhere");
  SUCCEED();
}

}  // namespace
}  // namespace ember::init
