// BusMasterGate: DMA allowed for drivers that never enable bus mastering, refused once they turn
// it off, and kicks deferred while refused come due when it is turned back on.
#include <gtest/gtest.h>

#include "virtio/BusMasterGate.h"

namespace ember::virtio {
namespace {

TEST(BusMasterGate, OpenUntilTheDriverFirstTurnsBusMasteringOn) {
  BusMasterGate g(2);
  EXPECT_TRUE(g.open());
  EXPECT_TRUE(g.setBusMaster(true).empty());
  EXPECT_TRUE(g.open());
  EXPECT_TRUE(g.setBusMaster(false).empty());
  EXPECT_FALSE(g.open());
}

TEST(BusMasterGate, KicksDeferredWhileClosedComeDueOnceWhenItOpens) {
  BusMasterGate g(3);
  g.setBusMaster(true);
  g.setBusMaster(false);
  g.defer(2);
  g.defer(0);
  g.defer(2);
  EXPECT_TRUE(g.setBusMaster(false).empty());  // still closed: nothing due
  EXPECT_EQ(g.setBusMaster(true), (std::vector<uint16_t>{0, 2}));
  EXPECT_TRUE(g.open());
  g.setBusMaster(false);
  EXPECT_TRUE(g.setBusMaster(true).empty());  // each kick comes due once
}

TEST(BusMasterGate, ResetForgetsDeferredKicksButNotTheHistory) {
  BusMasterGate g(1);
  g.setBusMaster(true);
  g.setBusMaster(false);
  g.defer(0);
  g.forgetDeferred();
  EXPECT_FALSE(g.open());
  EXPECT_TRUE(g.setBusMaster(true).empty());
}

TEST(BusMasterGate, DeferOutsideTheQueuesIsIgnored) {
  BusMasterGate g(1);
  g.setBusMaster(true);
  g.setBusMaster(false);
  g.defer(1);
  g.defer(0xffff);
  EXPECT_TRUE(g.setBusMaster(true).empty());
}

}  // namespace
}  // namespace ember::virtio
