// How long the event loop busy-polls before it sleeps: a bound that adapts to how soon work
// follows work, in the manner of QEMU's AioContext poll-max-ns / poll-grow / poll-shrink.
//
// After each round the loop reports how long it waited, from the start of polling until it found
// work (by polling or after sleeping in epoll). A wait the window covered leaves it as it is; a
// wait longer than the window but within the maximum doubles it (from kStartNs), because polling
// a little longer would have found the work without a sleep; a wait past the maximum halves it,
// down to zero, because polling would not have found it in time. An idle machine therefore stops
// polling after a few long waits and costs no CPU; a busy queue keeps the loop awake.
//
// A fixed window (adaptive off) polls `max` every round; a maximum of 0 turns polling off.
// Not thread-safe: only the loop thread uses it.
#pragma once

#include <cstdint>

namespace ember {

class PollWindow {
 public:
  static constexpr uint64_t kStartNs = 4000;
  // The default maximum of the adaptive window (ember run --poll-us), chosen by tools/bench.
  static constexpr uint64_t kDefaultMaxNs = 50000;

  PollWindow() = default;  // off
  static PollWindow adaptive(uint64_t max_ns) { return PollWindow(max_ns, true); }
  static PollWindow fixed(uint64_t ns) { return PollWindow(ns, false); }

  uint64_t current() const { return current_; }
  uint64_t max() const { return max_; }
  bool isAdaptive() const { return adaptive_; }
  bool enabled() const { return max_ != 0; }

  // One round is over: the loop waited `waited_ns` for work.
  void update(uint64_t waited_ns);

 private:
  PollWindow(uint64_t max_ns, bool adaptive)
      : max_(max_ns), adaptive_(adaptive), current_(adaptive ? 0 : max_ns) {}
  uint64_t max_ = 0;
  bool adaptive_ = false;
  uint64_t current_ = 0;
};

}  // namespace ember
