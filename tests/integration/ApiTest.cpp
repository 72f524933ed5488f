// ember run --api-sock and --config-file against the real /dev/kvm, driven by a real HTTP client
// (curl): Firecracker's getting-started sequence, with its field names verbatim, boots the test
// guest; the instance reports Running while it runs and refuses configuration then; the config
// file boots the same machine; the socket is gone when ember exits; a signal ends a waiting ember.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "Process.h"

namespace ember::test {
namespace {

// curl's answer: the HTTP status and the body, `-w` appending the status on a line of its own.
struct Answer {
  int status = 0;
  std::string body;
};

Answer curl(const std::string& socket, const std::string& method, const std::string& path,
            const std::string& body = "", bool content_type = true) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20", "--unix-socket",
                                   socket,          "-X",  method,       "-w", "\n%{http_code}"};
  if (!body.empty()) {
    argv.insert(argv.end(), {"--data", body});
    if (content_type) {
      argv.insert(argv.end(),
                  {"-H", "Accept: application/json", "-H", "Content-Type: application/json"});
    }
  }
  argv.push_back("http://localhost" + path);
  ProcessOptions opts;
  opts.timeout_ms = 30000;
  auto r = runProcess(argv, opts);
  Answer a;
  size_t nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    a.body = r.out.substr(0, nl);
    a.status = std::atoi(r.out.c_str() + nl + 1);
  }
  if (a.status == 0) a.body = describe(r);
  return a;
}

bool waitForSocket(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

std::string writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

TEST(Api, FirecrackersGettingStartedSequenceBootsTheTestGuest) {
  TempDir dir;
  std::string sock = dir.file("firecracker.socket");
  std::string rootfs = writeFile(dir.file("rootfs.ext4"), std::string(1 << 20, '\0'));
  std::vector<std::pair<std::string, Answer>> transcript;
  std::jthread client([&] {
    ASSERT_TRUE(waitForSocket(sock)) << "no API socket at " << sock;
    auto call = [&](const std::string& method, const std::string& path, const std::string& body,
                    bool content_type = true) {
      transcript.emplace_back(method + " " + path, curl(sock, method, path, body, content_type));
      return transcript.back().second;
    };
    // The Go SDK polls this until the socket answers.
    EXPECT_EQ(call("GET", "/machine-config", "").status, 200);
    // Firecracker's getting-started guide, its bodies verbatim but for the paths and the test
    // guest's words; the first request without a Content-Type, as its curl examples send.
    EXPECT_EQ(
        call(
            "PUT", "/boot-source",
            std::string(R"({"kernel_image_path": ")") + EMBER_TESTGUEST +
                R"(", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off tests=serial,cmdline,sleep sleep.ms=2500"})",
            false)
            .status,
        204);
    EXPECT_EQ(call("PUT", "/drives/rootfs",
                   R"({"drive_id": "rootfs", "path_on_host": ")" + rootfs +
                       R"(", "is_root_device": true, "is_read_only": false})")
                  .status,
              204);
    EXPECT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})").status,
              204);
    EXPECT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    Answer running = call("GET", "/", "");
    EXPECT_EQ(running.status, 200);
    EXPECT_NE(running.body.find(R"("state":"Running")"), std::string::npos) << running.body;
    Answer late = call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})");
    EXPECT_EQ(late.status, 400);
    EXPECT_NE(late.body.find("fault_message"), std::string::npos) << late.body;
    Answer config = call("GET", "/vm/config", "");
    EXPECT_NE(config.body.find(R"("vcpu_count":2)"), std::string::npos) << config.body;
  });
  auto r = runEmber({"run", "--api-sock", sock, "--log-level", "debug"});
  client.join();
  std::string log;
  for (const auto& [what, a] : transcript)
    log += what + " -> " + std::to_string(a.status) + " " + a.body + "\n";
  EXPECT_EQ(r.status, 0) << describe(r) << log;
  EXPECT_EQ(linesStartingWith(r.out, "PASS serial").size(), 1u) << describe(r);
  // The guest's command line: pci=off gone, the root device added as Firecracker adds it.
  EXPECT_EQ(linesStartingWith(r.out,
                              "cmdline: console=ttyS0 reboot=k panic=1 tests=serial,cmdline,sleep "
                              "sleep.ms=2500 root=/dev/vda rw")
                .size(),
            1u)
      << describe(r);
  EXPECT_NE(r.err.find("removed pci=off"), std::string::npos) << r.err;
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the socket outlived ember";
}

TEST(Api, ConfigFileBootsAtOnceWithOrWithoutAnApi) {
  TempDir dir;
  std::string file =
      writeFile(dir.file("vm.json"), std::string(R"({
    "boot-source": {"kernel_image_path": ")") +
                                         EMBER_TESTGUEST +
                                         R"(", "boot_args": "tests=smp expect.cpus=3"},
    "machine-config": {"vcpu_count": 3, "mem_size_mib": 96}
  })");
  auto r = runEmber({"run", "--config-file", file, "--no-api"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS smp").size(), 1u) << describe(r);

  std::string sock = dir.file("api.sock");
  r = runEmber({"run", "--config-file", file, "--api-sock", sock});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(linesStartingWith(r.out, "PASS smp").size(), 1u) << describe(r);

  std::string bad = writeFile(dir.file("bad.json"),
                              R"({"machine-config": {"vcpu_count": 0, "mem_size_mib": 64}})");
  expectOneErrorLine(runEmber({"run", "--config-file", bad, "--no-api"}), "vcpu_count");
  expectOneErrorLine(runEmber({"run", "--config-file", dir.file("missing.json")}), "missing.json");
  expectOneErrorLine(runEmber({"run", "--config-file", file, "--kernel", EMBER_TESTGUEST}),
                     "--config-file");
  expectOneErrorLine(runEmber({"run", "--no-api"}), "--no-api");
  expectOneErrorLine(runEmber({"run"}), "--kernel");
}

TEST(Api, ASignalEndsAnEmberWaitingForInstanceStart) {
  TempDir dir;
  std::string sock = dir.file("api.sock");
  ProcessOptions opts;
  opts.signal_after_ms = 1500;
  opts.signal = SIGTERM;
  auto r = runEmber({"run", "--api-sock", sock}, opts);
  EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
  EXPECT_NE(r.err.find("waiting for the VM to be configured"), std::string::npos) << r.err;
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the socket outlived ember";
  // A socket path that exists already is refused at once.
  writeFile(sock, "");
  expectOneErrorLine(runEmber({"run", "--api-sock", sock}), "exists");
}

}  // namespace
}  // namespace ember::test
