// ApiRouter: Firecracker's endpoints and status codes, and InstanceStart's hand-over to the main
// thread (a thread of the test plays it).
// test-labels: threaded
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <thread>
#include <vector>

#include "kvm/Log.h"
#include "vmm/api/ApiRouter.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm::api {
namespace {

using ember::vmm::testing::TempDir;

ApiRequest req(std::string method, std::string target, std::string body = "") {
  return ApiRequest{std::move(method), std::move(target), std::move(body)};
}

class ApiRouterTest : public ::testing::Test {
 protected:
  void SetUp() override { kernel_ = dir_.write("vmlinux", "kernel"); }
  void configure() {
    ASSERT_EQ(router_
                  .handle(req("PUT", "/boot-source",
                              fmt::format(R"({{"kernel_image_path": "{}"}})", kernel_)))
                  .status,
              204);
  }
  TempDir dir_;
  std::string kernel_;
  ApiRouter router_{"vm-1", VmResources{}};
};

TEST_F(ApiRouterTest, DescribesTheInstance) {
  auto r = router_.handle(req("GET", "/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("state":"Not started")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("id":"vm-1")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("vmm_version":")" EMBER_VERSION), std::string::npos) << r.body;
  EXPECT_EQ(router_.handle(req("GET", "/machine-config")).status, 200);
  EXPECT_EQ(router_.handle(req("GET", "/vm/config?x=1")).status, 200);
}

TEST_F(ApiRouterTest, ErrorsAre400WithAFaultMessage) {
  struct Case {
    ApiRequest request;
    const char* message;
  } cases[] = {
      {req("GET", "/nowhere"), "no endpoint GET /nowhere"},
      {req("DELETE", "/machine-config"), "takes GET, PUT and PATCH"},
      {req("POST", "/"), "/ takes GET only"},
      {req("PUT", "/drives"), "/drives/{drive_id}"},
      {req("PUT", "/drives/a/b", "{}"), "/drives/{drive_id}"},
      {req("PATCH", "/drives/a", "{}"), "before InstanceStart, PUT it"},
      {req("PUT", "/machine-config", "{"), "not valid JSON"},
      {req("PUT", "/actions", R"({"action_type": "Reboot"})"), "action_type must be"},
      {req("PUT", "/actions", R"({"action_type": 1})"), "action_type must be a string"},
      {req("PUT", "/actions", R"({})"), "'action_type' is required"},
      {req("PUT", "/actions", R"({"action_type": "InstanceStart", "now": true})"),
       "unknown field 'now'"},
      {req("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "no boot source"},
      {req("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), "has not started"},
  };
  for (const auto& c : cases) {
    auto r = router_.handle(c.request);
    EXPECT_EQ(r.status, 400) << c.request.method << " " << c.request.target;
    EXPECT_EQ(r.body.rfind(R"({"fault_message":")", 0), 0u) << r.body;
    EXPECT_NE(r.body.find(c.message), std::string::npos) << r.body;
  }
}

// Found by ApiRequestFuzzer: a target that is not UTF-8 must not make the answer's JSON throw.
TEST_F(ApiRouterTest, BytesThatAreNotUtf8AreAnsweredInValidJson) {
  auto r = router_.handle(req("PUT", "/\xff\xff-config", "{}"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body.rfind(R"({"fault_message":"no endpoint PUT /)", 0), 0u) << r.body;
  EXPECT_EQ(r.body.find('\xff'), std::string::npos);
  ApiRouter odd("\xfe", VmResources{});
  EXPECT_EQ(odd.handle(req("GET", "/")).status, 200);
}

TEST_F(ApiRouterTest, InstanceStartHandsTheResourcesToTheMainThread) {
  configure();
  ASSERT_EQ(
      router_.handle(req("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64})"))
          .status,
      204);
  std::jthread main_thread([&] {
    auto first = router_.waitForStart();
    ASSERT_TRUE(first);
    router_.bootFailed("KVM_CREATE_VM: no");
    auto second = router_.waitForStart();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->machine().vcpu_count, 2u);
    router_.setRunning(nullptr);
  });
  auto failed = router_.handle(req("PUT", "/actions", R"({"action_type": "InstanceStart"})"));
  EXPECT_EQ(failed.status, 400);
  EXPECT_NE(failed.body.find("KVM_CREATE_VM: no"), std::string::npos) << failed.body;
  EXPECT_EQ(router_.state(), InstanceState::NotStarted);
  EXPECT_EQ(router_.handle(req("PUT", "/actions", R"({"action_type": "InstanceStart"})")).status,
            204);
  main_thread.join();
  EXPECT_EQ(router_.state(), InstanceState::Running);
  EXPECT_NE(router_.handle(req("GET", "/")).body.find(R"("state":"Running")"), std::string::npos);

  // Pre-boot only from now on; GETs still answer.
  for (const auto& r : {req("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})"),
                        req("PATCH", "/machine-config", R"({"vcpu_count": 1})"),
                        req("PUT", "/boot-source", R"({"kernel_image_path": "x"})"),
                        req("PUT", "/drives/d", "{}"), req("PUT", "/network-interfaces/n", "{}"),
                        req("PUT", "/actions", R"({"action_type": "InstanceStart"})")}) {
    auto answer = router_.handle(r);
    EXPECT_EQ(answer.status, 400) << r.target;
    EXPECT_NE(answer.body.find("started"), std::string::npos) << answer.body;
  }
  EXPECT_EQ(router_.handle(req("GET", "/machine-config")).body.find(R"("vcpu_count":2)") !=
                std::string::npos,
            true);
}

TEST_F(ApiRouterTest, ShutDownReleasesBothSides) {
  configure();
  std::jthread client([&] {
    auto r = router_.handle(req("PUT", "/actions", R"({"action_type": "InstanceStart"})"));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("exiting"), std::string::npos) << r.body;
  });
  // Wait until the request is waiting for its answer, then shut down instead of booting.
  ASSERT_TRUE(router_.waitForStart());
  router_.shutDown();
  client.join();
  EXPECT_FALSE(router_.waitForStart());
}

}  // namespace
}  // namespace ember::vmm::api

namespace ember::vmm::api {
namespace {

struct FakeController : VmController {
  int pauses = 0, resumes = 0;
  bool fail = false;
  Result<void> sendCtrlAltDel() override { return makeError(Errc::Unsupported, "no keyboard"); }
  Result<void> pause() override {
    if (fail) return makeError(Errc::Io, "disk.img could not be synced");
    ++pauses;
    return okResult();
  }
  Result<void> resume() override {
    ++resumes;
    return okResult();
  }
  Result<std::string> counters() override { return std::string(R"({"devices":[]})"); }
  Result<void> setIoeventfd(std::string_view id, bool on) override {
    if (id != "blk0") return makeError(Errc::NotFound, "no device '{}'", id);
    switches.emplace_back(on);
    return okResult();
  }
  Result<BalloonStatus> balloon() override {
    if (!has_balloon) return makeError(Errc::NotFound, "there is no balloon device");
    BalloonStatus b{BalloonResource{target_mib, true, 1},
                    target_mib << 8,
                    target_mib << 8,
                    {{4, 1000}, {5, 4096}, {77, 1}}};
    return b;
  }
  Result<void> setBalloonTarget(uint32_t mib) override {
    target_mib = mib;
    return okResult();
  }
  Result<void> setBalloonStatsInterval(uint32_t s) override {
    interval = s;
    return okResult();
  }
  Result<void> replaceDiskMedium(size_t index, const std::string& path) override {
    if (path.find("busy") != std::string::npos) return makeError(Errc::Busy, "in flight");
    media.emplace_back(index, path);
    return okResult();
  }
  Result<std::string> createSnapshot(const std::string& state, const std::string& mem) override {
    snapshots.emplace_back(state, mem);
    return std::string("snapshot created");
  }
  std::vector<std::pair<size_t, std::string>> media;
  std::vector<std::pair<std::string, std::string>> snapshots;
  std::vector<bool> switches;
  bool has_balloon = true;
  uint32_t target_mib = 0, interval = 0;
};

TEST(ApiRouterVm, PauseAndResumeThroughTheController) {
  ApiRouter router("vm", VmResources{});
  auto patch = [&](const std::string& body) {
    return router.handle(ApiRequest{"PATCH", "/vm", body});
  };
  EXPECT_NE(patch(R"({"state": "Paused"})").body.find("has not started"), std::string::npos);
  FakeController c;
  router.setRunning(&c);
  EXPECT_EQ(patch(R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(router.state(), InstanceState::Paused);
  EXPECT_NE(router.handle(ApiRequest{"GET", "/", ""}).body.find(R"("state":"Paused")"),
            std::string::npos);
  EXPECT_EQ(patch(R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(router.state(), InstanceState::Running);
  EXPECT_EQ(c.pauses, 1);
  EXPECT_EQ(c.resumes, 1);
  for (const char* bad : {R"({"state": "Stopped"})", R"({"state": 1})", R"({})",
                          R"({"state": "Paused", "now": true})", "[]", "{"}) {
    auto r = patch(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.rfind(R"({"fault_message":"vm: )", 0), 0u) << r.body;
  }
  EXPECT_EQ(router.handle(ApiRequest{"PUT", "/vm", R"({"state": "Paused"})"}).status, 400);
  c.fail = true;
  auto failed = patch(R"({"state": "Paused"})");
  EXPECT_NE(failed.body.find("could not be synced"), std::string::npos) << failed.body;
  EXPECT_EQ(router.state(), InstanceState::Running);  // unchanged
  auto cad = router.handle(ApiRequest{"PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"});
  EXPECT_NE(cad.body.find("no keyboard"), std::string::npos) << cad.body;
  router.machineStopped();
  EXPECT_NE(patch(R"({"state": "Resumed"})").body.find("has stopped"), std::string::npos);
}

TEST(ApiRouterVm, EmberCountersAndTheIoeventfdSwitch) {
  ApiRouter router("vm", VmResources{});
  auto handle = [&](const char* method, const char* target, const std::string& body = "") {
    return router.handle(ApiRequest{method, target, body});
  };
  EXPECT_NE(handle("GET", "/ember/counters").body.find("has not started"), std::string::npos);
  EXPECT_NE(handle("PATCH", "/ember/devices/blk0", R"({"ioeventfd": false})")
                .body.find("has not started"),
            std::string::npos);
  FakeController c;
  router.setRunning(&c);
  auto counters = handle("GET", "/ember/counters");
  EXPECT_EQ(counters.status, 200);
  EXPECT_EQ(counters.body, R"({"devices":[]})");
  EXPECT_EQ(handle("PUT", "/ember/counters").status, 400);
  EXPECT_EQ(handle("PATCH", "/ember/devices/blk0", R"({"ioeventfd": false})").status, 204);
  EXPECT_EQ(handle("PATCH", "/ember/devices/blk0", R"({"ioeventfd": true})").status, 204);
  EXPECT_EQ(c.switches, (std::vector<bool>{false, true}));
  // Bad requests name what was wrong and change nothing.
  for (const char* bad : {R"({"ioeventfd": "off"})", R"({"ioeventfd": 0})", R"({})",
                          R"({"ioeventfd": true, "poll": false})", "[]", "{"}) {
    auto r = handle("PATCH", "/ember/devices/blk0", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.rfind(R"({"fault_message":"ember/devices: )", 0), 0u) << r.body;
  }
  auto unknown = handle("PATCH", "/ember/devices/nope0", R"({"ioeventfd": true})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("no device 'nope0'"), std::string::npos) << unknown.body;
  EXPECT_EQ(handle("PATCH", "/ember/devices/", R"({"ioeventfd": true})").status, 400);
  EXPECT_EQ(handle("PATCH", "/ember/devices/blk0/x", R"({"ioeventfd": true})").status, 400);
  EXPECT_EQ(handle("GET", "/ember/devices/blk0").status, 400);
  EXPECT_EQ(handle("GET", "/ember/nothing").status, 400);
  EXPECT_EQ(c.switches.size(), 2u);
  router.machineStopped();
  EXPECT_NE(handle("GET", "/ember/counters").body.find("has stopped"), std::string::npos);
}

TEST(ApiRouterVm, TheBalloonBeforeAndAfterInstanceStart) {
  ApiRouter router("vm", VmResources{});
  auto handle = [&](const char* method, const char* target, const std::string& body = "") {
    return router.handle(ApiRequest{method, target, body});
  };
  EXPECT_NE(handle("GET", "/balloon").body.find("no balloon device is configured"),
            std::string::npos);
  EXPECT_EQ(handle("PUT", "/balloon", R"({"amount_mib": 64, "deflate_on_oom": true})").status, 204);
  auto got = handle("GET", "/balloon");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, R"({"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":0})");
  EXPECT_NE(handle("PATCH", "/balloon", R"({"amount_mib": 1})").body.find("before InstanceStart"),
            std::string::npos);
  EXPECT_NE(handle("GET", "/balloon/statistics").body.find("has not started"), std::string::npos);

  FakeController c;
  router.setRunning(&c);
  EXPECT_NE(handle("PUT", "/balloon", R"({"amount_mib": 64, "deflate_on_oom": true})")
                .body.find("can only be added before InstanceStart"),
            std::string::npos);
  EXPECT_EQ(handle("PATCH", "/balloon", R"({"amount_mib": 96})").status, 204);
  EXPECT_EQ(c.target_mib, 96u);
  EXPECT_EQ(handle("GET", "/balloon").body,
            R"({"amount_mib":96,"deflate_on_oom":true,"stats_polling_interval_s":1})");
  auto stats = handle("GET", "/balloon/statistics");
  EXPECT_EQ(stats.status, 200);
  // Known tags by Firecracker's names; a tag the spec does not define is left out.
  EXPECT_EQ(stats.body,
            R"({"actual_mib":96,"actual_pages":24576,"free_memory":1000,"target_mib":96,)"
            R"("target_pages":24576,"total_memory":4096})");
  EXPECT_EQ(handle("PATCH", "/balloon/statistics", R"({"stats_polling_interval_s": 5})").status,
            204);
  EXPECT_EQ(c.interval, 5u);
  for (const char* bad :
       {R"({"amount_mib": -1})", R"({"amount_mib": "64"})", R"({})", R"({"amount_mib": 16777216})",
        R"({"amount_mib": 1.5})", R"({"amount_mib": 8, "deflate_on_oom": true})", "{"}) {
    auto r = handle("PATCH", "/balloon", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.rfind(R"({"fault_message":"balloon: )", 0), 0u) << r.body;
  }
  EXPECT_EQ(handle("PATCH", "/balloon/statistics", R"({"stats_polling_interval_s": 86401})").status,
            400);
  EXPECT_EQ(handle("GET", "/balloon/other").status, 400);
  EXPECT_EQ(handle("DELETE", "/balloon").status, 400);
  EXPECT_EQ(c.target_mib, 96u);  // no bad request changed it
  c.has_balloon = false;
  EXPECT_NE(handle("GET", "/balloon").body.find("there is no balloon device"), std::string::npos);
}

// PATCH /drives/{id} once the VM runs: the drive's index in the machine's disk order (the root
// device first) and the new path go to the controller, and GET /vm/config shows the path; every
// bad body is a 400 that changes nothing.
TEST(ApiRouterVm, PatchDriveGivesTheRunningDiskANewMedium) {
  TempDir dir;
  std::string data = dir.write("data.img", std::string(4096, '\0'));
  std::string root = dir.write("root.img", std::string(4096, '\0'));
  std::string next = dir.write("next.img", std::string(8192, '\0'));
  std::string busy = dir.write("busy.img", std::string(4096, '\0'));
  ApiRouter router("vm", VmResources{});
  auto handle = [&](const char* method, const std::string& target, const std::string& body) {
    return router.handle(ApiRequest{method, target, body});
  };
  ASSERT_EQ(
      handle("PUT", "/drives/data",
             R"({"drive_id": "data", "path_on_host": ")" + data + R"(", "is_root_device": false})")
          .status,
      204);
  ASSERT_EQ(
      handle("PUT", "/drives/rootfs",
             R"({"drive_id": "rootfs", "path_on_host": ")" + root + R"(", "is_root_device": true})")
          .status,
      204);
  FakeController c;
  router.setRunning(&c);
  for (const std::string& bad :
       std::vector<std::string>{"[", R"({"drive_id": "rootfs", "path_on_host": ")" + next + R"("})",
                                R"({"drive_id": "data", "path_on_host": "/nonexistent/next.img"})",
                                R"({"drive_id": "data", "path_on_host": 7})",
                                R"({"drive_id": "data", "rate_limiter": {}})",
                                R"({"drive_id": "data", "is_read_only": true})",
                                R"({"path_on_host": ")" + next + R"("})",
                                R"({"drive_id": "data", "path_on_host": ")" + busy + R"("})"}) {
    auto r = handle("PATCH", "/drives/data", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.rfind(R"({"fault_message":"drives/data: )", 0), 0u) << r.body;
  }
  EXPECT_NE(handle("PATCH", "/drives/other",
                   R"({"drive_id": "other", "path_on_host": ")" + next + R"("})")
                .body.find("there is no drive 'other'"),
            std::string::npos);
  EXPECT_TRUE(c.media.empty());
  EXPECT_EQ(handle("PATCH", "/drives/data", R"({"drive_id": "data"})").status, 204);
  EXPECT_TRUE(c.media.empty());  // nothing to change
  EXPECT_EQ(
      handle("PATCH", "/drives/data", R"({"drive_id": "data", "path_on_host": ")" + next + R"("})")
          .status,
      204);
  ASSERT_EQ(c.media.size(), 1u);
  EXPECT_EQ(c.media[0], (std::pair<size_t, std::string>(1, next)));  // rootfs is disk 0
  std::string config = handle("GET", "/vm/config", "").body;
  EXPECT_NE(config.find(next), std::string::npos) << config;
  EXPECT_EQ(config.find(data), std::string::npos) << config;
  router.machineStopped();
  EXPECT_NE(
      handle("PATCH", "/drives/data", R"({"drive_id": "data", "path_on_host": ")" + data + R"("})")
          .body.find("has stopped"),
      std::string::npos);
}

// PUT /logger: every bad body is a 400 naming "logger:" and changes nothing; a good one sends
// the messages at its level or above, from any thread, to the file as Firecracker's lines
// (UTC time to the microsecond, [id:level]); set once; the router's end takes the file away.
TEST(ApiRouterVm, LoggerSendsMessagesAtItsLevelToItsFile) {
  ember::vmm::testing::TempDir dir;
  std::string path = dir.path() + "/ember.log";
  std::string fifo = dir.path() + "/log.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  {
    ApiRouter router("vm-7", VmResources{});
    auto put = [&](const std::string& body) {
      return router.handle(ApiRequest{"PUT", "/logger", body});
    };
    for (const std::string& bad : std::vector<std::string>{
             "[", R"({"level": 3})", R"({"level": "Loud"})", R"({"show_level": "yes"})",
             R"({"module": "api"})", R"({"show_log_origin": true})", R"({"colour": true})",
             R"({"log_path": 5})", R"({"log_path": ""})", R"({"log_path": "/nonexistent/d/l"})",
             R"({"log_path": ")" + fifo + R"("})"}) {
      auto r = put(bad);
      EXPECT_EQ(r.status, 400) << bad;
      EXPECT_EQ(r.body.rfind(R"({"fault_message":"logger: )", 0), 0u) << r.body;
    }
    EXPECT_EQ(router.handle(ApiRequest{"GET", "/logger", ""}).status, 400);
    EXPECT_FALSE(std::ifstream(path).good());  // no bad body created the file

    EXPECT_EQ(put(R"({"log_path": ")" + path +
                  R"(", "level": "warning", "show_level": true, "show_log_origin": false})")
                  .status,
              204);
    EXPECT_NE(put(R"({"log_path": ")" + path + R"("})").body.find("cannot change"),
              std::string::npos);
    std::thread([] { log::warn("logger test: a warning from another thread"); }).join();
    log::info("logger test: below the file's level");
    log::error("logger test: an error");
  }
  log::error("logger test: after the router");
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  std::regex shape(R"(^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6} )"
                   R"(\[vm-7:(warning|error)\] logger test: .*$)");
  EXPECT_TRUE(std::regex_match(lines[0], shape)) << lines[0];
  EXPECT_NE(lines[0].find("[vm-7:warning] logger test: a warning from another thread"),
            std::string::npos)
      << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], shape)) << lines[1];
  EXPECT_NE(lines[1].find("[vm-7:error] logger test: an error"), std::string::npos) << lines[1];
}

// PUT /logger without a log_path sets stderr's level (Firecracker's names, any case).
TEST(ApiRouterVm, LoggerWithoutAPathSetsStderrsLevel) {
  ApiRouter router("vm", VmResources{});
  EXPECT_FALSE(log::enabled(log::Level::Debug));
  EXPECT_EQ(router.handle(ApiRequest{"PUT", "/logger", R"({"level": "DEBUG"})"}).status, 204);
  EXPECT_TRUE(log::enabled(log::Level::Debug));
  log::setLevel(log::Level::Info);
}

TEST(ApiRouterVm, MetricsFileLinesOnFlushMetrics) {
  ember::vmm::testing::TempDir dir;
  ApiRouter router("vm", VmResources{});
  auto handle = [&](const char* method, const char* target, const std::string& body = "") {
    return router.handle(ApiRequest{method, target, body});
  };
  auto flush = [&] { return handle("PUT", "/actions", R"({"action_type": "FlushMetrics"})"); };
  EXPECT_NE(flush().body.find("no metrics file is configured"), std::string::npos);
  for (const char* bad : {R"({})", R"({"metrics_path": 3})", R"({"metrics_path": ""})",
                          R"({"metrics_path": "/nonexistent/dir/m.json"})",
                          R"({"metrics_path": "/tmp/x", "level": "Info"})", "["}) {
    auto r = handle("PUT", "/metrics", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.rfind(R"({"fault_message":"metrics: )", 0), 0u) << r.body;
  }
  // A named pipe that nobody reads is refused at once rather than blocking.
  std::string fifo = dir.path() + "/metrics.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto pipe = handle("PUT", "/metrics", R"({"metrics_path": ")" + fifo + R"("})");
  EXPECT_NE(pipe.body.find("named pipe nobody reads"), std::string::npos) << pipe.body;

  std::string path = dir.path() + "/metrics.json";
  EXPECT_EQ(handle("PUT", "/metrics", R"({"metrics_path": ")" + path + R"("})").status, 204);
  EXPECT_NE(handle("PUT", "/metrics", R"({"metrics_path": ")" + path + R"("})")
                .body.find("cannot change"),
            std::string::npos);
  EXPECT_EQ(flush().status, 204);  // before the start: the time and the state
  FakeController c;
  router.setRunning(&c);
  EXPECT_EQ(flush().status, 204);      // and the counters once it runs
  EXPECT_TRUE(router.flushMetrics());  // the periodic flush
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(R"("state":"Not started")"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("devices"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("devices":[])"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(R"("state":"Running")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find(R"("utc_timestamp_ms":)"), std::string::npos) << lines[2];
}

// PUT /snapshot/create only while paused, with Firecracker's fields; PUT /snapshot/load only
// before a start, handing the restore source over as InstanceStart hands the resources.
TEST(ApiRouterVm, SnapshotCreateOnlyWhilePausedAndLoadOnlyBeforeAStart) {
  ApiRouter router("vm", VmResources{});
  auto put = [&](const std::string& path, const std::string& body) {
    return router.handle(ApiRequest{"PUT", path, body});
  };
  const std::string good =
      R"({"snapshot_type": "Full", "snapshot_path": "/s/state", "mem_file_path": "/s/mem"})";
  EXPECT_NE(put("/snapshot/create", good).body.find("has not started"), std::string::npos);
  FakeController c;
  router.setRunning(&c);
  auto running = put("/snapshot/create", good);
  EXPECT_EQ(running.status, 400);
  EXPECT_NE(running.body.find("pause it first"), std::string::npos) << running.body;
  ASSERT_EQ(router.handle(ApiRequest{"PATCH", "/vm", R"({"state": "Paused"})"}).status, 204);
  for (const char* bad :
       {R"({"snapshot_type": "Diff", "snapshot_path": "a", "mem_file_path": "b"})",
        R"({"snapshot_path": "a"})", R"({"snapshot_path": "", "mem_file_path": "b"})",
        R"({"snapshot_path": "a", "mem_file_path": "b", "version": "1.0"})", "[]", "{"}) {
    auto r = put("/snapshot/create", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_NE(r.body.find("snapshot/create: "), std::string::npos) << r.body;
  }
  EXPECT_TRUE(c.snapshots.empty());
  EXPECT_EQ(put("/snapshot/create", good).status, 204);
  ASSERT_EQ(c.snapshots.size(), 1u);
  EXPECT_EQ(c.snapshots[0], std::make_pair(std::string("/s/state"), std::string("/s/mem")));
  EXPECT_EQ(router.handle(ApiRequest{"GET", "/snapshot/create", ""}).status, 400);
  // A started microVM loads no snapshot.
  auto late = put("/snapshot/load", R"({"snapshot_path": "a", "mem_file_path": "b"})");
  EXPECT_NE(late.body.find("has started"), std::string::npos) << late.body;
}

TEST(ApiRouterVm, SnapshotLoadHandsTheRestoreSourceToTheMainThread) {
  ApiRouter router("vm", VmResources{});
  auto put = [&](const std::string& body) {
    return router.handle(ApiRequest{"PUT", "/snapshot/load", body});
  };
  for (
      const char* bad :
      {R"({"mem_file_path": "b"})", R"({"snapshot_path": "a"})",
       R"({"snapshot_path": "a", "mem_file_path": "b", "mem_backend": {"backend_type": "File", "backend_path": "b"}})",
       R"({"snapshot_path": "a", "mem_backend": {"backend_type": "Uffd", "backend_path": "b"}})",
       R"({"snapshot_path": "a", "mem_backend": {"backend_type": "File"}})",
       R"({"snapshot_path": "a", "mem_file_path": "b", "resume_vm": "yes"})",
       R"({"snapshot_path": "a", "mem_file_path": "b", "enable_diff_snapshots": true})",
       R"({"snapshot_path": "a", "mem_file_path": "b", "network_overrides": [{"iface_id": "eth0"}]})",
       R"({"snapshot_path": "a", "mem_file_path": "b", "track": 1})"}) {
    auto r = put(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_NE(r.body.find("snapshot/load"), std::string::npos) << r.body;
  }
  std::jthread main_thread([&] {
    auto next = router.waitForStart();
    ASSERT_TRUE(next);
    auto config = next->machineConfig(MachineConfig{});
    ASSERT_TRUE(config);
    ASSERT_TRUE(config->restore);
    EXPECT_EQ(config->restore->state_path, "/s/state");
    EXPECT_EQ(config->restore->mem_path, "/s/mem");
    EXPECT_FALSE(config->restore->resume);
    router.bootFailed("memory file /s/mem belongs to another snapshot");
  });
  auto failed = put(
      R"({"snapshot_path": "/s/state", "mem_backend": {"backend_type": "File", "backend_path": "/s/mem"}})");
  main_thread.join();
  EXPECT_EQ(failed.status, 400);
  EXPECT_NE(failed.body.find("snapshot/load: memory file /s/mem belongs to another snapshot"),
            std::string::npos)
      << failed.body;
  // The failed load left nothing behind: InstanceStart wants a boot source again.
  auto start = router.handle(ApiRequest{"PUT", "/actions", R"({"action_type": "InstanceStart"})"});
  EXPECT_NE(start.body.find("no boot source"), std::string::npos) << start.body;
}

}  // namespace
}  // namespace ember::vmm::api
