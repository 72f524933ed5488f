// PortDiscovery: sysfs scanning, the bounded wait for named ports, and the /dev links.
#include "vmm/init/PortDiscovery.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <thread>

#include "vmm/init/FileOps.h"

namespace ember::init {
namespace {

// A sysfs attribute is at most a page (Documentation/filesystems/sysfs.rst).
constexpr size_t kMaxAttributeBytes = 4096;

std::string joinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    out += (out.empty() ? "" : ", ") + name;
  }
  return out.empty() ? "none" : out;
}

}  // namespace

PortMap scanNamedPorts(const std::string& sysfs_root) {
  PortMap ports;
  std::string dir = sysfs_root + "/class/virtio-ports";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    return ports;
  }
  while (const dirent* entry = ::readdir(d.get())) {
    std::string device = entry->d_name;
    if (device == "." || device == "..") {
      continue;
    }
    InitResult<std::string> name = readFile(dir + "/" + device + "/name", kMaxAttributeBytes);
    if (!name.ok()) {
      continue;  // no name yet
    }
    std::string text = std::move(name).value();
    // The driver prints the name with a newline (show_port_name(): "%s\n").
    if (!text.empty() && text.back() == '\n') {
      text.pop_back();
    }
    if (!text.empty()) {
      ports.emplace(std::move(text), std::move(device));
    }
  }
  return ports;
}

InitResult<PortMap> waitForPorts(const std::string& sysfs_root, const std::string& dev_root,
                                 const std::vector<std::string>& names,
                                 std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds interval) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    PortMap seen = scanNamedPorts(sysfs_root);
    PortMap wanted;
    std::vector<std::string> missing;
    for (const std::string& name : names) {
      auto it = seen.find(name);
      struct stat st {};
      if (it != seen.end() && ::stat((dev_root + "/" + it->second).c_str(), &st) == 0) {
        wanted.emplace(name, it->second);
      } else if (std::find(missing.begin(), missing.end(), name) == missing.end()) {
        missing.push_back(name);
      }
    }
    if (missing.empty()) {
      return wanted;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::vector<std::string> present;
      for (const auto& [name, device] : seen) {
        present.push_back(name + " (" + device + ")");
      }
      return InitError{"virtio-console ports did not appear within " +
                       std::to_string(timeout.count()) + " ms: " + joinNames(missing) +
                       " (named ports seen: " + joinNames(present) + ")"};
    }
    std::this_thread::sleep_for(interval);
  }
}

InitResult<void> linkPorts(const std::string& dev_root, const PortMap& ports) {
  std::string dir = dev_root + "/virtio-ports";
  if (InitResult<void> made = makeDirectories(dir); !made.ok()) {
    return made;
  }
  for (const auto& [name, device] : ports) {
    std::string link = dir + "/" + name;
    if (::unlink(link.c_str()) != 0 && errno != ENOENT) {
      return InitError::fromErrno("replacing " + link);
    }
    if (::symlink(("../" + device).c_str(), link.c_str()) != 0) {
      return InitError::fromErrno("linking " + link + " to ../" + device);
    }
  }
  return {};
}

}  // namespace ember::init
