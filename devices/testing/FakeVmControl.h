// Test-only VmControl that records every exit request (the first one is the one that counts
// in a real machine; tests see them all).
#pragma once

#include <string>
#include <vector>

#include "devices/VmControl.h"

namespace ember::devices::testing {

class FakeVmControl : public VmControl {
 public:
  void requestExit(ExitRequest request) override {
    statuses.push_back(request.status);
    reasons.push_back(request.message);
    requests.push_back(std::move(request));
  }
  std::vector<int> statuses;
  std::vector<std::string> reasons;
  std::vector<ExitRequest> requests;
};

}  // namespace ember::devices::testing
