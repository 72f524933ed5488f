// ExecJob: what `ember exec` asks the guest init to do, and its wire format.
//
// The host writes the job into the initramfs as /ember/job; the init (vmm/init/Init.cpp) reads
// it as PID 1. The format is a sequence of records, each a key followed by a fixed number of
// values, every key and value terminated by one NUL byte:
//
//   key        values  meaning
//   version    1       "1"; the first record
//   module     1       absolute path of a kernel module in the initramfs (.ko, .ko.xz, .ko.zst,
//                      .ko.gz); repeated, in load order
//   root       2       virtio-fs tag of the host root; "ro" (an overlay with a tmpfs upper layer)
//                      or "rw" (the virtio-fs mount itself)
//   share      3       virtio-fs tag, absolute guest path, "ro" or "rw"; repeated
//   cwd        1       absolute working directory of the command
//   env        1       NAME=VALUE; repeated; the command's whole environment
//   arg        1       argv element; repeated, in order; none at all means an interactive shell
//   uid, gid   1       decimal ids the command runs as
//   stdout_port, stderr_port, status_port
//              1       virtio-console port names
//   verbose    1       "0" or "1": log each step of the init to the kernel console
//
// version, root, cwd, uid, gid and the three ports are required; verbose is optional (0). The
// bytes are built by ember, but decode() treats them as untrusted: any deviation is an error
// that names the record, so that a broken job ends in a clear `setup-error`, not a crash of
// PID 1. This file depends on the standard library only: the init links nothing else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ember::init {

enum class Access { ReadOnly, ReadWrite };

// A host directory shared through its own virtio-fs device, mounted at `guest_path`.
struct ExecShare {
  std::string tag;
  std::string guest_path;
  Access access = Access::ReadOnly;

  bool operator==(const ExecShare&) const = default;
};

struct ExecJob {
  std::vector<std::string> modules;
  std::string root_tag;
  Access root_access = Access::ReadOnly;
  std::vector<ExecShare> shares;
  std::string cwd;
  std::vector<std::string> env;
  std::vector<std::string> argv;  // empty: an interactive shell on /dev/hvc0
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string stdout_port;
  std::string stderr_port;
  std::string status_port;
  bool verbose = false;

  bool operator==(const ExecJob&) const = default;

  // The wire bytes. They decode to this job exactly when validate() finds nothing.
  std::string encode() const;
  // The first value decode() would refuse, as the message decode() would give, or nullopt when
  // the job is well-formed. The host calls it before writing the job.
  std::optional<std::string> validate() const;
  // Parses the wire bytes; on failure returns nullopt and sets *error (if given) to a message
  // naming the record, e.g. `record 3 (share): guest path "tmp" is not absolute`.
  static std::optional<ExecJob> decode(std::string_view bytes, std::string* error);
};

}  // namespace ember::init
