// What the integration tests of the API share: curl as the HTTP client, waiting for the socket,
// and a watch over ember's console while a client thread drives it.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "Process.h"

namespace ember::test {

// curl's answer: the HTTP status and the body.
struct Answer {
  int status = 0;
  std::string body;
};

// One request with curl on the unix socket (CONTENT_TYPE: send JSON's Content-Type and Accept).
Answer curl(const std::string& socket, const std::string& method, const std::string& path,
            const std::string& body = "", bool content_type = true);

// Waits (up to 5 s) for a unix socket at PATH.
bool waitForSocket(const std::string& path);

std::string writeFile(const std::string& path, const std::string& text);

// Every acknowledged write (virtio-blk-ack-stream's ACK lines) is in the file DISK with the
// pattern of SEED: the number of ranges that are not (-1: the file cannot be read).
int missingWrites(const std::string& disk, uint64_t seed,
                  const std::vector<std::pair<uint64_t, uint32_t>>& ranges);

// ember's stdout as it arrives, for a client thread that waits on what the guest prints, and
// ember's pid, to end it (runProcess's on_tick feeds both).
class ConsoleWatch {
 public:
  ProcessOptions options(int timeout_ms);
  std::string out() const;
  // Waits (up to MS) until PRED holds for the output so far.
  bool waitUntil(const std::function<bool(const std::string&)>& pred, int ms = 30000) const;
  bool waitFor(const std::string& text, int ms = 30000) const;
  // ember's VmRSS in KiB (0 before it runs or once it is gone).
  uint64_t rssKiB() const;
  // SIGTERM to ember (runProcess reaps it only after returning, so the pid is still ember's).
  void terminate() const { signal(SIGTERM); }
  // SIGNAL to ember.
  void signal(int signal) const;

 private:
  mutable std::mutex mu_;
  std::string out_;
  pid_t pid_ = 0;
};

}  // namespace ember::test
