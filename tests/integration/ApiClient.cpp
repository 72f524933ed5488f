// curl, the socket wait and the console watch of the API's integration tests.
#include "ApiClient.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "tests/guest/pattern.h"

namespace ember::test {

Answer curl(const std::string& socket, const std::string& method, const std::string& path,
            const std::string& body, bool content_type) {
  // `-w` appends the status on a line of its own.
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

int missingWrites(const std::string& disk, uint64_t seed,
                  const std::vector<std::pair<uint64_t, uint32_t>>& ranges) {
  int fd = ::open(disk.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int missing = 0;
  std::vector<uint8_t> buf;
  for (auto [offset, len] : ranges) {
    buf.resize(len);
    if (::pread(fd, buf.data(), len, static_cast<off_t>(offset)) != static_cast<ssize_t>(len) ||
        pattern_mismatch(seed, offset, buf.data(), len) != len) {
      ++missing;
    }
  }
  ::close(fd);
  return missing;
}

ProcessOptions ConsoleWatch::options(int timeout_ms) {
  ProcessOptions o;
  o.timeout_ms = timeout_ms;
  o.on_tick = [this](pid_t pid, const std::string& out) {
    std::lock_guard lock(mu_);
    out_ = out;
    pid_ = pid;
  };
  return o;
}

std::string ConsoleWatch::out() const {
  std::lock_guard lock(mu_);
  return out_;
}

bool ConsoleWatch::waitUntil(const std::function<bool(const std::string&)>& pred, int ms) const {
  for (int waited = 0; !pred(out()); waited += 10) {
    if (waited >= ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool ConsoleWatch::waitFor(const std::string& text, int ms) const {
  return waitUntil([&](const std::string& out) { return out.find(text) != std::string::npos; }, ms);
}

uint64_t ConsoleWatch::rssKiB() const {
  std::lock_guard lock(mu_);
  return pid_ > 0 ? vmRssKiB(pid_) : 0;
}

void ConsoleWatch::signal(int signal) const {
  std::lock_guard lock(mu_);
  if (pid_ > 0) ::kill(pid_, signal);
}

}  // namespace ember::test
