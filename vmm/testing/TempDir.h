// Test-only scratch directory: made fresh under gtest's temporary directory, filled with files,
// directories and FIFOs by relative path, and removed with everything in it at the end of the
// test.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace ember::vmm::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "ember-test-XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
    EXPECT_FALSE(path_.empty()) << "mkdtemp failed";
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string at(std::string_view relative) const { return path_ + "/" + std::string(relative); }

  // Writes a file (creating its parent directories) and returns its path.
  std::string write(std::string_view relative, std::span<const uint8_t> bytes,
                    mode_t mode = 0600) const {
    std::string p = at(relative);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path(), ec);
    EXPECT_FALSE(ec) << ec.message();
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    EXPECT_GE(fd, 0) << p;
    if (fd >= 0) {
      EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
      ::close(fd);
    }
    return p;
  }
  std::string write(std::string_view relative, std::string_view text, mode_t mode = 0600) const {
    return write(relative,
                 std::span(reinterpret_cast<const uint8_t*>(text.data()),  // the chars as bytes
                           text.size()),
                 mode);
  }
  std::string mkdir(std::string_view relative) const {
    std::string p = at(relative);
    std::error_code ec;
    std::filesystem::create_directories(p, ec);
    EXPECT_FALSE(ec) << ec.message();
    return p;
  }
  std::string fifo(std::string_view relative) const {
    std::string p = at(relative);
    EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0) << p;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace ember::vmm::testing
