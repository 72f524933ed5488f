// A private directory for one run's own files (ember exec's status port and kernel log): made
// with mkdtemp(3), mode 0700, and removed with its contents when the object goes, unless kept.
#pragma once

#include <string>

#include "kvm/Result.h"

namespace ember::vmm {

class ScratchDirectory {
 public:
  // A new directory `parent`/`prefix`XXXXXX.
  static Result<ScratchDirectory> create(const std::string& parent, const std::string& prefix);
  ScratchDirectory(ScratchDirectory&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  ScratchDirectory& operator=(ScratchDirectory&&) = delete;
  ScratchDirectory(const ScratchDirectory&) = delete;
  ~ScratchDirectory();

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Leaves the directory on disk (for a log the user is pointed at).
  void keep() { path_.clear(); }

 private:
  explicit ScratchDirectory(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace ember::vmm
