// EventLoop: runOnce() dispatch, pausing, RAII removal, cross-thread registration, stop().
// test-labels: threaded
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kvm/EventLoop.h"

namespace ember {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<EventLoop> makeLoop() {
  auto loop = EventLoop::create();
  EXPECT_TRUE(loop.ok());
  return std::move(loop).value();
}

EventFd makeEventFd() {
  auto fd = EventFd::create();
  EXPECT_TRUE(fd.ok());
  return std::move(fd).value();
}

TEST(EventLoop, DispatchesAReadyEventfdOnRunOnce) {
  auto loop = makeLoop();
  auto efd = makeEventFd();
  int calls = 0;
  uint32_t seen = 0;
  uint64_t consumed = 0;
  auto reg = loop->add(efd.fd(), EPOLLIN, [&](uint32_t events) {
    ++calls;
    seen = events;
    consumed += efd.consume();
  });
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  EXPECT_TRUE(reg->active());

  loop->runOnce(0);
  EXPECT_EQ(calls, 0);  // not signalled yet

  efd.signal();
  efd.signal();
  loop->runOnce(1000);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen & EPOLLIN, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(consumed, 2u);

  loop->runOnce(0);
  EXPECT_EQ(calls, 1);  // drained: level-triggered epoll has nothing more
}

TEST(EventLoop, SetEventsZeroPausesWithoutForgetting) {
  auto loop = makeLoop();
  auto efd = makeEventFd();
  int calls = 0;
  auto reg = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) {
    ++calls;
    efd.consume();
  });
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE(reg->setEvents(0).ok());
  efd.signal();
  loop->runOnce(0);
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(reg->setEvents(EPOLLIN).ok());
  loop->runOnce(1000);
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, DroppingTheRegistrationRemovesTheFd) {
  auto loop = makeLoop();
  auto efd = makeEventFd();
  int calls = 0;
  {
    auto reg = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) { ++calls; });
    ASSERT_TRUE(reg.ok());
  }
  efd.signal();
  loop->runOnce(0);
  EXPECT_EQ(calls, 0);

  // The same fd can be registered again once the old registration is gone.
  auto again = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) {
    ++calls;
    efd.consume();
  });
  ASSERT_TRUE(again.ok()) << again.error().message;
  loop->runOnce(1000);
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, RegistrationsMoveAndReset) {
  auto loop = makeLoop();
  auto efd = makeEventFd();
  int calls = 0;
  auto added = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) {
    ++calls;
    efd.consume();
  });
  ASSERT_TRUE(added.ok());
  EventLoop::Registration reg = std::move(*added);
  EXPECT_FALSE(added->active());
  EXPECT_TRUE(reg.active());
  EventLoop::Registration other;
  EXPECT_FALSE(other.active());
  EXPECT_EQ(other.setEvents(EPOLLIN).error().code, Errc::NotFound);
  other = std::move(reg);
  EXPECT_TRUE(other.active());

  efd.signal();
  loop->runOnce(1000);
  EXPECT_EQ(calls, 1);

  other.reset();
  EXPECT_FALSE(other.active());
  other.reset();  // idempotent
  efd.signal();
  loop->runOnce(0);
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, ACallbackMayRemoveItsOwnRegistration) {
  auto loop = makeLoop();
  auto efd = makeEventFd();
  int calls = 0;
  EventLoop::Registration reg;
  auto added = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) {
    ++calls;
    reg.reset();  // not consumed: only the removal stops further calls
  });
  ASSERT_TRUE(added.ok());
  reg = std::move(*added);
  efd.signal();
  loop->runOnce(1000);
  loop->runOnce(0);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(reg.active());
}

TEST(EventLoop, RefusesBadAndUnpollableFds) {
  auto loop = makeLoop();
  auto bad = loop->add(-1, EPOLLIN, [](uint32_t) {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::Io);

  // A regular file cannot be polled (EPERM): reported as Unsupported, which ConsoleInput uses
  // to treat a redirected stdin as "no input".
  std::string path = ::testing::TempDir() + "ember-eventloop-XXXXXX";
  int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  UniqueFd file(fd);
  ::unlink(path.c_str());
  auto regular = loop->add(file.get(), EPOLLIN, [](uint32_t) {});
  ASSERT_FALSE(regular.ok());
  EXPECT_EQ(regular.error().code, Errc::Unsupported);
}

TEST(EventLoop, CallbacksRegisteredFromOtherThreadsRunOnTheLoopThread) {
  auto loop = makeLoop();
  loop->start();
  EXPECT_FALSE(loop->onLoopThread());

  constexpr int kThreads = 3;
  std::vector<EventFd> fds;
  for (int i = 0; i < kThreads; ++i) {
    fds.push_back(makeEventFd());
  }
  std::vector<std::promise<bool>> fired(kThreads);
  std::vector<std::future<bool>> results;
  for (auto& p : fired) {
    results.push_back(p.get_future());
  }
  std::vector<EventLoop::Registration> regs(kThreads);
  std::vector<std::thread> registrars;
  for (int i = 0; i < kThreads; ++i) {
    registrars.emplace_back([&, i] {
      auto reg = loop->add(fds[i].fd(), EPOLLIN, [&, i](uint32_t) {
        if (fds[i].consume() != 0) {
          fired[i].set_value(loop->onLoopThread());
        }
      });
      ASSERT_TRUE(reg.ok());
      regs[i] = std::move(*reg);
      fds[i].signal();
    });
  }
  for (auto& t : registrars) {
    t.join();
  }
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(results[i].wait_for(5s), std::future_status::ready) << "callback " << i;
    EXPECT_TRUE(results[i].get()) << "callback " << i << " ran off the loop thread";
  }
  loop->stop();
  regs.clear();  // removal after stop() is fine
}

TEST(EventLoop, StopReturnsPromptly) {
  auto loop = makeLoop();
  loop->stop();  // never started: nothing to join
  loop->start();
  std::this_thread::sleep_for(20ms);  // let the thread block in epoll_wait
  auto begin = std::chrono::steady_clock::now();
  loop->stop();
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_LT(elapsed, 1s);
  loop->stop();  // twice is harmless

  // The loop can be started again after a stop.
  auto efd = makeEventFd();
  std::promise<void> fired;
  auto reg = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) {
    if (efd.consume() != 0) {
      fired.set_value();
    }
  });
  ASSERT_TRUE(reg.ok());
  loop->start();
  efd.signal();
  EXPECT_EQ(fired.get_future().wait_for(5s), std::future_status::ready);
  begin = std::chrono::steady_clock::now();
  loop->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
}

TEST(EventLoop, DestructorStopsARunningLoop) {
  auto loop = makeLoop();
  loop->start();
  auto begin = std::chrono::steady_clock::now();
  loop.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
}

// ---- polling ----

// Records the order of the loop's calls; poll() reports work while `work` is non-zero.
struct RecordingPoller : EventLoop::Poller {
  std::vector<char> calls;  // 'b'egin, 'p'oll, 'e'nd
  int work = 0;
  bool work_at_end = false;
  void beginPolling() override { calls.push_back('b'); }
  bool poll() override {
    calls.push_back('p');
    if (work == 0) return false;
    --work;
    return true;
  }
  bool endPolling() override {
    calls.push_back('e');
    return std::exchange(work_at_end, false);
  }
};

TEST(EventLoop, PollersAreLeftAloneWhileTheWindowIsShut) {
  auto loop = makeLoop();
  auto poller = std::make_shared<RecordingPoller>();
  auto reg = loop->addPoller(poller);
  loop->runOnce(0);
  loop->setPollWindow(PollWindow::adaptive(50000));  // shut until work follows work
  loop->runOnce(0);
  EXPECT_TRUE(poller->calls.empty());
  EXPECT_EQ(loop->counters().slept, 2u);
}

TEST(EventLoop, AWindowPollsUntilTimeRunsOutThenAsksForNotificationsBeforeSleeping) {
  auto loop = makeLoop();
  loop->setPollWindow(PollWindow::fixed(200'000));  // 200 us
  auto poller = std::make_shared<RecordingPoller>();
  auto reg = loop->addPoller(poller);
  auto begin = std::chrono::steady_clock::now();
  loop->runOnce(20);
  auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_GE(poller->calls.size(), 3u);
  EXPECT_EQ(poller->calls.front(), 'b');
  EXPECT_EQ(poller->calls.back(), 'e');
  EXPECT_GT(std::count(poller->calls.begin(), poller->calls.end(), 'p'), 1);
  EXPECT_GE(took, 20ms) << "nothing was found: it slept the timeout after polling";
  EXPECT_EQ(loop->counters().slept, 1u);
  EXPECT_EQ(loop->counters().polled, 0u);
}

TEST(EventLoop, WorkFoundByPollingEndsTheRoundWithoutSleeping) {
  auto loop = makeLoop();
  loop->setPollWindow(PollWindow::fixed(10'000'000));
  auto poller = std::make_shared<RecordingPoller>();
  poller->work = 1;
  auto reg = loop->addPoller(poller);
  auto begin = std::chrono::steady_clock::now();
  loop->runOnce(5000);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s);
  EXPECT_EQ(poller->calls, (std::vector<char>{'b', 'p', 'e'}));
  EXPECT_EQ(loop->counters().polled, 1u);
  EXPECT_EQ(loop->counters().slept, 0u);
}

TEST(EventLoop, WorkThatArrivesAsNotificationsResumeKeepsTheLoopAwake) {
  auto loop = makeLoop();
  loop->setPollWindow(PollWindow::fixed(50'000));
  auto poller = std::make_shared<RecordingPoller>();
  poller->work_at_end = true;  // the ring moved between the last look and the re-enable
  auto reg = loop->addPoller(poller);
  auto begin = std::chrono::steady_clock::now();
  loop->runOnce(5000);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1s) << "it must not sleep on found work";
  EXPECT_EQ(loop->counters().slept, 0u);
}

TEST(EventLoop, FdEventsAreDispatchedWhilePolling) {
  auto loop = makeLoop();
  loop->setPollWindow(PollWindow::fixed(10'000'000));  // 10 ms
  auto poller = std::make_shared<RecordingPoller>();
  auto preg = loop->addPoller(poller);
  auto efd = makeEventFd();
  int calls = 0;
  auto reg = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) {
    efd.consume();
    ++calls;
  });
  ASSERT_TRUE(reg.ok());
  efd.signal();
  loop->runOnce(5000);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop->counters().polled, 1u) << "found by the poll phase's look at epoll";
  EXPECT_EQ(poller->calls.back(), 'e');
}

TEST(EventLoop, ARemovedPollerIsNoLongerPolled) {
  auto loop = makeLoop();
  loop->setPollWindow(PollWindow::fixed(10'000));
  auto poller = std::make_shared<RecordingPoller>();
  auto reg = loop->addPoller(poller);
  loop->runOnce(0);
  size_t seen = poller->calls.size();
  EXPECT_GT(seen, 0u);
  reg.reset();
  loop->runOnce(0);
  EXPECT_EQ(poller->calls.size(), seen);
  EXPECT_FALSE(reg.setEvents(EPOLLIN).ok());
}

TEST(EventLoop, AnAdaptiveWindowClosesWhenIdle) {
  auto loop = makeLoop();
  loop->setPollWindow(PollWindow::adaptive(50'000));
  auto poller = std::make_shared<RecordingPoller>();
  auto reg = loop->addPoller(poller);
  auto efd = makeEventFd();
  auto freg = loop->add(efd.fd(), EPOLLIN, [&](uint32_t) { efd.consume(); });
  ASSERT_TRUE(freg.ok());
  // Work that follows work at once opens the window...
  for (int i = 0; i < 8; ++i) {
    efd.signal();
    loop->runOnce(100);
  }
  EXPECT_GT(loop->pollWindow().current(), 0u);
  // ...and waits of 5 ms, a hundred times the maximum, shut it.
  for (int i = 0; i < 8 && loop->pollWindow().current() != 0; ++i) loop->runOnce(5);
  EXPECT_EQ(loop->pollWindow().current(), 0u);
  poller->calls.clear();
  loop->runOnce(5);
  EXPECT_TRUE(poller->calls.empty()) << "a shut window polls nothing";
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// pause(): device fds and pollers wait, control fds are served, and what was signalled while
// paused is served on resume; setEvents while paused takes effect on resume; stop() ends a
// paused loop.
TEST(EventLoopPause, HoldsBackDevicesServesControlAndCatchesUpOnResume) {
  auto loop = makeLoop();
  auto device = makeEventFd();
  auto control = makeEventFd();
  std::atomic<int> device_calls{0}, control_calls{0};
  auto dreg = loop->add(device.fd(), EPOLLIN, [&](uint32_t) {
    device.consume();
    ++device_calls;
  });
  auto creg = loop->addControl(control.fd(), EPOLLIN, [&](uint32_t) {
    control.consume();
    ++control_calls;
  });
  ASSERT_TRUE(dreg.ok() && creg.ok());
  struct CountingPoller : EventLoop::Poller {
    std::atomic<int> polls{0};
    void beginPolling() override {}
    bool poll() override {
      ++polls;
      return false;
    }
    bool endPolling() override { return false; }
  };
  auto poller = std::make_shared<CountingPoller>();
  auto preg = loop->addPoller(poller);
  loop->setPollWindow(PollWindow::fixed(20'000));
  loop->start();

  device.signal();
  for (int i = 0; i < 200 && device_calls == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(device_calls, 1);

  loop->pause();
  EXPECT_TRUE(loop->paused());
  int polls_at_pause = poller->polls;
  device.signal();  // a kick while paused
  control.signal();
  for (int i = 0; i < 200 && control_calls == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(control_calls, 1);  // served while paused
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(device_calls, 1);  // held back
  EXPECT_EQ(poller->polls, polls_at_pause);
  ASSERT_TRUE(dreg->setEvents(EPOLLIN));  // stored, applied on resume

  loop->resume();
  for (int i = 0; i < 200 && device_calls < 2; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(device_calls, 2);  // the kick made while paused
  for (int i = 0; i < 200 && poller->polls == polls_at_pause; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_GT(poller->polls, polls_at_pause);

  loop->pause();
  loop->stop();    // ends a paused loop
  loop->resume();  // the loop is gone: returns at once
}

TEST(EventLoopPause, PauseOfALoopThatDoesNotRunReturns) {
  auto loop = makeLoop();
  loop->pause();
  loop->resume();
  SUCCEED();
}

}  // namespace
}  // namespace ember
