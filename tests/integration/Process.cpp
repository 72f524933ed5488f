// fork/exec with pipes, a poll loop and a kill on timeout.
#include "Process.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace ember::test {

ProcessResult runProcess(const std::vector<std::string>& argv, const ProcessOptions& opts) {
  ProcessResult result;
  int out[2], err[2], in[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0) {
    result.err = "pipe failed";
    return result;
  }
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (opts.close_stdin) {
      close(0);
    } else {
      dup2(in[0], 0);
    }
    if (opts.before_exec) {
      opts.before_exec();
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));  // execv's API
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(in[0]);
  if (!opts.stdin_data.empty()) {
    (void)!write(in[1], opts.stdin_data.data(), opts.stdin_data.size());
  }
  close(in[1]);
  bool signalled = false;
  int open_fds = 2;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  for (;;) {
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    if (!signalled && opts.signal_after_ms >= 0 && elapsed >= opts.signal_after_ms) {
      kill(pid, opts.signal);
      signalled = true;
    }
    if (elapsed >= opts.timeout_ms) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (open_fds == 0) {
      break;
    }
    int wait_ms = 100;
    int n = poll(fds, 2, wait_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[4096];
        ssize_t r = read(fds[i].fd, buf, sizeof buf);
        if (r > 0) {
          sinks[i]->append(buf, static_cast<size_t>(r));
        } else {
          close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
    if (opts.on_tick) {
      opts.on_tick(pid, result.out);
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.status = 128 + WTERMSIG(status);
  }
  return result;
}

ProcessResult runEmber(const std::vector<std::string>& args, const ProcessOptions& opts) {
  std::vector<std::string> argv{EMBER_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return runProcess(argv, opts);
}

uint64_t vmRssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::vector<std::string> linesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) lines.push_back(line);
  }
  return lines;
}

void expectOneErrorLine(const ProcessResult& r, const std::string& needle) {
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << "stdout: " << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
  EXPECT_EQ(r.err.rfind("ember: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

std::string describe(const ProcessResult& r) {
  return "status " + std::to_string(r.status) + (r.timed_out ? " (timed out)" : "") +
         "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/ember-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<int> virtiofsdFor(const std::string& dir) {
  std::vector<int> out;
  const std::string source = "source=" + dir;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::stringstream s;
    s << in.rdbuf();
    std::string cmd = s.str();
    size_t at = cmd.find(source);
    size_t end = at + source.size();
    bool exact =
        at != std::string::npos && (end == cmd.size() || cmd[end] == '\0' || cmd[end] == ',');
    if (cmd.find("virtiofsd") == std::string::npos || !exact) continue;
    // A zombie is gone already, only not reaped by its parent yet.
    std::ifstream st(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(st, line);
    if (line.find(") Z ") == std::string::npos) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

std::vector<std::pair<uint64_t, uint32_t>> ackedWrites(const std::string& out) {
  std::vector<std::pair<uint64_t, uint32_t>> ranges;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a line without its newline yet
    uint64_t offset;
    uint32_t len;
    if (std::sscanf(line.c_str(), "ACK %" SCNu64 " %" SCNu32, &offset, &len) == 2) {
      ranges.emplace_back(offset, len);
    }
  }
  return ranges;
}

}  // namespace ember::test
