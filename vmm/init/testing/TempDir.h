// Test-only: a scratch directory under /tmp for the init's file and process tests, removed
// with everything in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ember::init::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ember-init-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) {
      path_ = tmpl;
    }
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) {
      std::filesystem::remove_all(path_, ignored);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Writes `contents` to NAME (its parent directories created), returning the path.
  std::string write(const std::string& name, const std::string& contents) const {
    std::string target = file(name);
    std::filesystem::create_directories(std::filesystem::path(target).parent_path());
    std::ofstream(target, std::ios::binary) << contents;
    return target;
  }

 private:
  std::string path_;
};

}  // namespace ember::init::testing
