// Runs a child process with a timeout and captures its stdout and stderr (integration tests).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ember::test {

struct ProcessResult {
  int status = -1;  // exit status, or 128+signal
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
  double seconds = 0;
};

struct ProcessOptions {
  int timeout_ms = 60000;
  std::string stdin_data;    // written to the child's stdin, then closed
  bool close_stdin = false;  // run with fd 0 closed
  int signal_after_ms = -1;  // send `signal` this long after start
  int signal = 0;
  // Called on the test's thread while the child runs: after every batch of output and at least
  // every 100 ms, with the child's pid and its stdout so far. It must return quickly; the child
  // is not reaped until runProcess returns, so the pid stays valid inside the callback.
  std::function<void(pid_t pid, const std::string& out)> on_tick;
  // Runs in the child between fork and exec (async-signal-safe calls only, e.g. prctl).
  std::function<void()> before_exec;
};

ProcessResult runProcess(const std::vector<std::string>& argv, const ProcessOptions& opts = {});

// Convenience: build/ember with arguments.
ProcessResult runEmber(const std::vector<std::string>& args, const ProcessOptions& opts = {});

// The status and both outputs, for a failing assertion's message.
std::string describe(const ProcessResult& r);

// A configuration error as ember must report it (hostile-guest case 39): exit status 1, nothing
// on stdout, exactly one line on stderr, `ember: error: ...`, naming `needle`. gtest assertions.
void expectOneErrorLine(const ProcessResult& r, const std::string& needle);

// A scratch directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The whole content of a file (empty when it cannot be read).
std::vector<uint8_t> readFile(const std::string& path);

// The pids of live (not zombie) virtiofsd processes whose `source=` option is exactly `dir`.
std::vector<int> virtiofsdFor(const std::string& dir);

// The test guest's virtio-blk-ack-stream record so far: (offset, len) of each `ACK offset len`
// line that is complete (ends with its newline).
std::vector<std::pair<uint64_t, uint32_t>> ackedWrites(const std::string& out);

// VmRSS of `pid` in KiB (/proc/PID/status), 0 when it cannot be read.
uint64_t vmRssKiB(pid_t pid);

// Lines of `text` that start with `prefix`.
std::vector<std::string> linesStartingWith(const std::string& text, const std::string& prefix);

}  // namespace ember::test
