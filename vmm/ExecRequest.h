// Everything `ember exec` was asked to do, validated and typed (vmm/Cli.cpp parses it, and
// vmm/ExecSession.cpp turns it into a machine, an initramfs and a job for the guest init).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ember::vmm {

// --share HOST[:GUEST[:ro]]: a host directory the command sees at GUEST, through a virtio-fs
// device of its own, read-write unless `ro`.
struct ExecShareConfig {
  std::string host;
  std::string guest;  // empty: the same path as `host`
  bool readonly = false;
};

struct ExecRequest {
  std::string kernel;
  std::string initrd;       // the user's initrd, which ember's initramfs is appended to
  std::string modules;      // the kernel's modules directory; empty: /lib/modules/<release>
  bool no_modules = false;  // --modules none: everything the guest needs is built in
  std::string root = "/";   // the host directory that is the guest's root
  bool rw = false;          // the root is written through, not under a tmpfs overlay
  std::vector<ExecShareConfig> shares;
  std::optional<double> timeout;
  uint32_t cpus = 1;
  uint64_t memory = 512ULL << 20;
  bool verbose = false;  // the kernel console and ember's log on stderr
  std::string log;       // where the kernel console goes (empty: a file kept on failure)
  std::string append;    // more kernel command-line words
  std::string kvm_device = "/dev/kvm";
  std::string report;             // --report FILE, as for ember run
  std::vector<std::string> argv;  // empty: an interactive shell (stdin must be a terminal)
};

}  // namespace ember::vmm
