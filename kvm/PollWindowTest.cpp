// PollWindow: the adaptive busy-poll bound grows when work follows work within the maximum,
// holds when the window found it, and shrinks to zero on long waits; fixed and off windows.
#include <gtest/gtest.h>

#include "kvm/PollWindow.h"

namespace ember {
namespace {

TEST(PollWindow, OffByDefault) {
  PollWindow w;
  EXPECT_FALSE(w.enabled());
  w.update(100);
  EXPECT_EQ(w.current(), 0u);
}

TEST(PollWindow, AdaptiveStartsShutAndOpensWhenWorkFollowsSoon) {
  auto w = PollWindow::adaptive(50000);
  EXPECT_EQ(w.current(), 0u);  // an idle machine never polls
  w.update(3000);              // the next event came 3 us later: polling would have caught it
  EXPECT_EQ(w.current(), PollWindow::kStartNs);
  w.update(6000);
  EXPECT_EQ(w.current(), 8000u);
  w.update(7000);  // found inside the window: as long as it needs to be
  EXPECT_EQ(w.current(), 8000u);
  for (int i = 0; i < 10; ++i) w.update(49000);
  EXPECT_EQ(w.current(), 50000u) << "never past the maximum";
}

TEST(PollWindow, AdaptiveShrinksToZeroOnWaitsPastTheMaximum) {
  auto w = PollWindow::adaptive(50000);
  for (int i = 0; i < 8; ++i) w.update(40000);
  ASSERT_EQ(w.current(), 50000u);
  w.update(10'000'000);  // 10 ms of nothing
  EXPECT_EQ(w.current(), 25000u);
  w.update(10'000'000);
  w.update(10'000'000);
  EXPECT_EQ(w.current(), 6250u);
  w.update(10'000'000);
  EXPECT_EQ(w.current(), 0u) << "below the starting window it stops polling";
  w.update(10'000'000);
  EXPECT_EQ(w.current(), 0u);
}

TEST(PollWindow, FixedAlwaysPollsItsTimeAndZeroIsOff) {
  auto w = PollWindow::fixed(20000);
  EXPECT_EQ(w.current(), 20000u);
  w.update(10'000'000);
  w.update(1);
  EXPECT_EQ(w.current(), 20000u);
  auto off = PollWindow::fixed(0);
  EXPECT_FALSE(off.enabled());
  off.update(100);
  EXPECT_EQ(off.current(), 0u);
}

TEST(PollWindow, AMaximumBelowTheStartIsHonoured) {
  auto w = PollWindow::adaptive(2000);
  w.update(1000);
  EXPECT_EQ(w.current(), 2000u);
  w.update(5000);
  EXPECT_EQ(w.current(), 0u);
}

}  // namespace
}  // namespace ember
