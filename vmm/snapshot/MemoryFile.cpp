// Writing and checking a snapshot's memory file.
#include "vmm/snapshot/MemoryFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kvm/LittleEndian.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"

namespace ember::vmm {

namespace {
constexpr uint64_t kPage = 4096;

Result<void> writeAll(int fd, std::span<const uint8_t> bytes, uint64_t offset,
                      const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::fromErrno(Errc::Io, fmt::format("snapshot: cannot write {}", path));
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return okResult();
}

bool allZero(const uint8_t* p, size_t n) {
  static const std::array<uint8_t, kPage> zeroes{};
  return std::memcmp(p, zeroes.data(), n) == 0;
}

std::string idText(const MemoryFile::Id& id) {
  std::string out;
  for (uint8_t b : id) out += fmt::format("{:02x}", b);
  return out;
}
}  // namespace

Result<MemoryFile::Written> MemoryFile::write(const std::string& path, const GuestMemory& memory,
                                              const Id& id) {
  const auto& regions = memory.regions();
  if (regions.size() > kMaxRegions) {
    return makeError(Errc::Unsupported, "snapshot: {} RAM regions, more than a memory file holds",
                     regions.size());
  }
  StateWriter header;
  header.raw(std::span(reinterpret_cast<const uint8_t*>(kMagic.data()), kMagic.size()));
  header.u32(kFormatVersion);
  header.u32(static_cast<uint32_t>(regions.size()));
  header.raw(id);
  for (const auto& r : regions) {
    header.u64(r.start.raw);
    header.u64(r.size);
  }
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid())
    return Error::fromErrno(Errc::Io, fmt::format("snapshot: cannot create {}", tmp));
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    return e;
  };
  Written out{kHeaderBytes + memory.totalSize(), kHeaderBytes};
  if (::ftruncate(fd.get(), static_cast<off_t>(out.file_bytes)) != 0) {
    return fail(Error::fromErrno(
        Errc::Io, fmt::format("snapshot: cannot size {} to {} bytes", tmp, out.file_bytes)));
  }
  if (auto r = writeAll(fd.get(), header.data(), 0, tmp); !r) return fail(r.error());
  uint64_t offset = kHeaderBytes;
  for (const auto& region : regions) {
    const uint8_t* base = region.mapping.data();
    // Runs of non-zero pages, one pwrite each; zero pages stay holes of the ftruncate'd file.
    uint64_t run_start = 0, run_len = 0;
    auto flush = [&]() -> Result<void> {
      if (run_len == 0) return okResult();
      EMBER_TRY(writeAll(fd.get(), std::span(base + run_start, run_len), offset + run_start, tmp));
      out.data_bytes += run_len;
      run_len = 0;
      return okResult();
    };
    for (uint64_t at = 0; at < region.size; at += kPage) {
      size_t n = static_cast<size_t>(std::min(kPage, region.size - at));
      if (allZero(base + at, n)) {
        if (auto r = flush(); !r) return fail(r.error());
        continue;
      }
      if (run_len == 0) run_start = at;
      run_len += n;
    }
    if (auto r = flush(); !r) return fail(r.error());
    offset += region.size;
  }
  if (::fdatasync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(Error::fromErrno(Errc::Io, fmt::format("snapshot: cannot write {}", path)));
  }
  return out;
}

Result<UniqueFd> MemoryFile::open(const std::string& path, const Id& id,
                                  std::span<const GuestRegionSpec> regions) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return Error::fromErrno(Errc::Io, fmt::format("memory file {}: cannot open it", path));
  }
  std::vector<uint8_t> page(kHeaderBytes);
  ssize_t n = ::pread(fd.get(), page.data(), page.size(), 0);
  if (n < 0) return Error::fromErrno(Errc::Io, fmt::format("memory file {}: cannot read it", path));
  StateReader r(std::span(page.data(), static_cast<size_t>(n)), "memory file " + path);
  auto magic = r.raw(kMagic.size(), "magic");
  if (!r.ok() || std::memcmp(magic.data(), kMagic.data(), kMagic.size()) != 0) {
    return makeError(Errc::Format, "memory file {}: not an ember memory file", path);
  }
  uint32_t version = r.u32("format version");
  uint32_t count = r.count("region count", kMaxRegions);
  auto file_id = r.raw(16, "snapshot id");
  std::vector<GuestRegionSpec> file_regions;
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    uint64_t start = r.u64("region start");
    uint64_t size = r.u64("region size");
    file_regions.push_back({GuestAddress(start), size});
  }
  EMBER_TRY(r.status());
  if (version != kFormatVersion) {
    return makeError(Errc::Unsupported,
                     "memory file {}: format {} is another ember version's; this ember reads {}",
                     path, version, kFormatVersion);
  }
  if (!std::equal(file_id.begin(), file_id.end(), id.begin(), id.end())) {
    Id got{};
    std::copy(file_id.begin(), file_id.end(), got.begin());
    return makeError(Errc::Format,
                     "memory file {} belongs to another snapshot (id {}; the state file's is {}): "
                     "give the memory file written with this state file",
                     path, idText(got), idText(id));
  }
  if (!std::equal(file_regions.begin(), file_regions.end(), regions.begin(), regions.end())) {
    return makeError(Errc::Format, "memory file {}: its RAM regions are not the state file's",
                     path);
  }
  uint64_t total = 0;
  for (const auto& r : regions) total += r.size;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Error::fromErrno(Errc::Io, fmt::format("memory file {}: fstat", path));
  }
  if (static_cast<uint64_t>(st.st_size) != kHeaderBytes + total) {
    return makeError(Errc::Format,
                     "memory file {}: truncated or padded: {} bytes, not the {} of its header and "
                     "{} MiB of RAM",
                     path, st.st_size, kHeaderBytes + total, total >> 20);
  }
  return fd;
}

}  // namespace ember::vmm
