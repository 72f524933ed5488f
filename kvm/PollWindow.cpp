// The adaptive busy-poll bound.
#include "kvm/PollWindow.h"

#include <algorithm>

namespace ember {

void PollWindow::update(uint64_t waited_ns) {
  if (!adaptive_ || max_ == 0) {
    return;
  }
  if (waited_ns <= current_) {
    return;  // the window found the work: it is as long as it needs to be
  }
  if (waited_ns > max_) {
    current_ /= 2;  // polling up to the maximum would not have found it either
    if (current_ < kStartNs) current_ = 0;
    return;
  }
  current_ = current_ == 0 ? std::min(kStartNs, max_) : std::min(current_ * 2, max_);
}

}  // namespace ember
