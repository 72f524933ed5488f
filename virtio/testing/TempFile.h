// Test-only files for disk-backed device tests: a temporary disk image with known contents, and
// a small tmpfs mount (root only) on which writes run out of space.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace ember::virtio::testing {

// The byte a test image holds at `offset`: distinct per sector and per position.
inline uint8_t imageByte(uint64_t offset) {
  return static_cast<uint8_t>((offset * 7) ^ (offset >> 9) ^ 0x5a);
}

class TempFile {
 public:
  // A file of `size` bytes in `dir` filled with imageByte().
  explicit TempFile(uint64_t size, const std::string& dir = "/tmp", bool fill = true) {
    std::string tmpl = dir + "/ember-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    int fd = ::mkstemp(buf.data());
    if (fd < 0) return;
    path_ = buf.data();
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      ::close(fd);
      return;
    }
    if (fill) {
      std::vector<uint8_t> chunk(64 * 1024);
      for (uint64_t off = 0; off < size; off += chunk.size()) {
        size_t n = std::min<uint64_t>(chunk.size(), size - off);
        for (size_t i = 0; i < n; ++i) chunk[i] = imageByte(off + i);
        if (::pwrite(fd, chunk.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
          break;
      }
    }
    ::close(fd);
    ok_ = true;
  }
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

  std::vector<uint8_t> read(uint64_t offset, size_t len) const {
    std::vector<uint8_t> out(len, 0);
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = ::pread(fd, out.data(), len, static_cast<off_t>(offset));
      out.resize(n > 0 ? static_cast<size_t>(n) : 0);
      ::close(fd);
    }
    return out;
  }
  bool truncate(uint64_t size) const {
    return ::truncate(path_.c_str(), static_cast<off_t>(size)) == 0;
  }

 private:
  std::string path_;
  bool ok_ = false;
};

// A tmpfs of `size_kib` KiB on a fresh directory, unmounted and removed on destruction.
class TmpfsMount {
 public:
  explicit TmpfsMount(unsigned size_kib) {
    char tmpl[] = "/tmp/ember-tmpfs-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    std::string opts = "size=" + std::to_string(size_kib) + "k";
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

}  // namespace ember::virtio::testing
