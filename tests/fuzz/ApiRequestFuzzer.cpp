// Fuzzes the API socket's request handling: the input is either a whole HTTP request, parsed as
// the server parses a connection's (Beast's parser with the server's limits) and then
// dispatched, or (first byte odd) a JSON body for one endpoint chosen by the second byte, or a
// --config-file. With the first byte's bit 1 set the microVM "runs": a controller that checks
// every value the router hands it (the balloon's target and interval within their bounds, a
// device id without '/') takes the requests that need a machine. Properties: no crash, no
// exception escapes, every answer is 204, 200 or 400 and a 400 carries {"fault_message": ...},
// and an accepted machine-config is within its bounds. InstanceStart never blocks: the router is
// shut down first, so it is answered at once.
#include <cstdlib>
#include <string>
#include <string_view>

#include "vmm/api/ApiRouter.h"
#include "vmm/api/ApiServer.h"

using namespace ember::vmm::api;

namespace {

void check(const ApiResponse& r) {
  if (r.status != 200 && r.status != 204 && r.status != 400) abort();
  if (r.status == 400 && r.body.rfind("{\"fault_message\":", 0) != 0) abort();
  if (r.status == 204 && !r.body.empty()) abort();
}

const char* const kEndpoints[][2] = {
    {"PUT", "/machine-config"},
    {"PATCH", "/machine-config"},
    {"PUT", "/boot-source"},
    {"PUT", "/drives/rootfs"},
    {"PUT", "/network-interfaces/eth0"},
    {"PUT", "/actions"},
    {"PATCH", "/drives/rootfs"},
    {"GET", "/vm/config"},
    {"PUT", "/balloon"},
    {"PATCH", "/balloon"},
    {"PATCH", "/balloon/statistics"},
    {"PATCH", "/ember/devices/blk0"},
    {"PATCH", "/vm"},
};

struct CheckingController : VmController {
  ember::Result<void> sendCtrlAltDel() override { return ember::okResult(); }
  ember::Result<void> pause() override { return ember::okResult(); }
  ember::Result<void> resume() override { return ember::okResult(); }
  ember::Result<std::string> counters() override { return std::string("{}"); }
  ember::Result<void> setIoeventfd(std::string_view id, bool) override {
    if (id.empty() || id.find('/') != std::string_view::npos) abort();
    return ember::okResult();
  }
  ember::Result<BalloonStatus> balloon() override {
    return BalloonStatus{BalloonResource{}, 0, 0, {{4, 1}, {999, 2}}};
  }
  ember::Result<void> setBalloonTarget(uint32_t mib) override {
    if (mib > kBalloonMaxMib) abort();
    return ember::okResult();
  }
  ember::Result<void> setBalloonStatsInterval(uint32_t seconds) override {
    if (seconds > kBalloonMaxStatsIntervalS) abort();
    return ember::okResult();
  }
  ember::Result<void> replaceDiskMedium(size_t, const std::string&) override {
    abort();  // the fuzzer's router has no drive, so no PATCH reaches here
  }
  ember::Result<std::string> createSnapshot(const std::string& state,
                                            const std::string& mem) override {
    if (state.empty() || mem.empty()) abort();  // the router checks both paths
    return std::string("snapshot");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ApiRouter router("fuzz", VmResources{});
  router.shutDown();
  CheckingController controller;
  if (size >= 1 && (data[0] & 2)) router.setRunning(&controller);
  std::string_view input(reinterpret_cast<const char*>(data), size);  // the bytes as text
  if (size >= 2 && (data[0] & 1)) {
    std::string body(input.substr(2));
    if (data[1] == 0xff) {
      VmResources resources;
      (void)resources.applyConfigFile(body);
      return 0;
    }
    const auto& e = kEndpoints[data[1] % (sizeof kEndpoints / sizeof kEndpoints[0])];
    check(router.handle(ApiRequest{e[0], e[1], body}));
  } else {
    auto request = parseHttpRequest(input);
    // PUT /metrics and PUT /logger open (and may create) the path the body names, and the
    // logger changes the process's log: not from fuzz input.
    if (request && request->target.find("metrics") == std::string::npos &&
        request->target.find("logger") == std::string::npos) {
      check(router.handle(*request));
    }
  }
  auto config = router.handle(ApiRequest{"GET", "/machine-config", ""});
  check(config);
  if (config.status != 200) abort();
  router.machineStopped();
  return 0;
}
