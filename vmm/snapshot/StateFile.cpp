// The snapshot state file's container: writing, and checking a file before anything in it is
// used (see StateFile.h).
#include "vmm/snapshot/StateFile.h"

#include <fcntl.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "kvm/LittleEndian.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"
#include "kvm/UniqueFd.h"

namespace ember::vmm {

namespace {

bool validTag(std::span<const char> tag) {
  return tag.size() == 4 && std::all_of(tag.begin(), tag.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
         });
}

std::string printable(std::span<const uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) {
    out +=
        b >= 0x20 && b < 0x7f ? std::string(1, static_cast<char>(b)) : fmt::format("\\x{:02x}", b);
  }
  return out;
}

}  // namespace

std::string StateFile::Section::name() const {
  return fmt::format("{} {}", std::string_view(tag.data(), tag.size()), instance);
}

uint64_t StateFile::crc64(std::span<const uint8_t> bytes) {
  return lzma_crc64(bytes.data(), bytes.size(), 0);
}

Result<void> StateFile::add(std::string_view tag, uint32_t instance, std::vector<uint8_t> bytes) {
  if (!validTag(tag)) {
    return makeError(Errc::InvalidArgument, "state file: '{}' is not a section tag", tag);
  }
  if (find(tag, instance) != nullptr) {
    return makeError(Errc::InvalidArgument, "state file: section {} {} is there already", tag,
                     instance);
  }
  Section s;
  std::memcpy(s.tag.data(), tag.data(), 4);
  s.instance = instance;
  s.bytes = std::move(bytes);
  sections_.push_back(std::move(s));
  return okResult();
}

std::vector<uint8_t> StateFile::serialize() const {
  StateWriter w;
  w.raw(std::span(reinterpret_cast<const uint8_t*>(kMagic.data()), kMagic.size()));
  w.u32(kFormatVersion);
  w.u32(static_cast<uint32_t>(sections_.size()));
  for (const auto& s : sections_) {
    w.raw(std::span(reinterpret_cast<const uint8_t*>(s.tag.data()), 4));
    w.u32(s.instance);
    w.u64(s.bytes.size());
    w.raw(s.bytes);
  }
  w.u64(crc64(w.data()));
  return w.take();
}

Result<uint64_t> StateFile::write(const std::string& path) const {
  std::vector<uint8_t> bytes = serialize();
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid())
    return Error::fromErrno(Errc::Io, fmt::format("snapshot: cannot create {}", tmp));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto e = Error::fromErrno(Errc::Io, fmt::format("snapshot: cannot write {}", tmp));
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = Error::fromErrno(Errc::Io, fmt::format("snapshot: cannot write {}", path));
    ::unlink(tmp.c_str());
    return e;
  }
  return uint64_t{bytes.size()};
}

Result<StateFile> StateFile::parse(std::span<const uint8_t> bytes, std::string_view what) {
  const size_t minimum = kHeaderBytes + kChecksumBytes;
  if (bytes.size() < kMagic.size() ||
      std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
    return makeError(Errc::Format, "{}: not an ember state file (it does not begin with '{}')",
                     what, std::string_view(kMagic.data(), kMagic.size()));
  }
  if (bytes.size() < minimum) {
    return makeError(Errc::Format, "{}: truncated: {} bytes, less than a header and checksum", what,
                     bytes.size());
  }
  if (bytes.size() > kMaxFileBytes) {
    return makeError(Errc::Format, "{}: {} bytes, more than a state file can hold ({})", what,
                     bytes.size(), kMaxFileBytes);
  }
  uint32_t version = loadLe<uint32_t>(bytes.subspan(8, 4));
  if (version != kFormatVersion) {
    return makeError(Errc::Unsupported,
                     "{}: state format {} is another ember version's; this ember reads format {} "
                     "(restore it with the ember that made it)",
                     what, version, kFormatVersion);
  }
  // The structure first, so that a file cut short says so rather than failing its checksum.
  auto body = bytes.first(bytes.size() - kChecksumBytes);
  StateReader r(body, std::string(what));
  r.raw(kHeaderBytes - 4, "header");
  uint32_t n = r.count("section count", kMaxSections);
  StateFile file;
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    auto tag = r.raw(4, fmt::format("section {}'s tag", i));
    uint32_t instance = r.u32(fmt::format("section {}'s instance", i));
    uint64_t len = r.u64(fmt::format("section {}'s length", i));
    if (!r.ok()) break;
    if (!validTag(std::span(reinterpret_cast<const char*>(tag.data()), tag.size()))) {
      return makeError(Errc::Format, "{}: section {} has the tag '{}', which is not one", what, i,
                       printable(tag));
    }
    Section s;
    std::memcpy(s.tag.data(), tag.data(), 4);
    s.instance = instance;
    if (len > r.remaining()) {
      return makeError(Errc::Format,
                       "{}: truncated: section {} ({}) needs {} bytes, {} are left before the "
                       "checksum",
                       what, i, s.name(), len, r.remaining());
    }
    auto data = r.raw(static_cast<size_t>(len), s.name());
    s.bytes.assign(data.begin(), data.end());
    file.sections_.push_back(std::move(s));
  }
  EMBER_TRY(r.finish());
  uint64_t stored = loadLe<uint64_t>(bytes.last(kChecksumBytes));
  uint64_t computed = crc64(body);
  if (stored != computed) {
    return makeError(Errc::Format,
                     "{}: the CRC-64 is {:016x}, the content's is {:016x}: the file is corrupt",
                     what, stored, computed);
  }
  for (size_t i = 0; i < file.sections_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (file.sections_[j].tag == file.sections_[i].tag &&
          file.sections_[j].instance == file.sections_[i].instance) {
        return makeError(Errc::Format, "{}: section {} appears twice", what,
                         file.sections_[i].name());
      }
    }
  }
  return file;
}

Result<StateFile> StateFile::read(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    return Error::fromErrno(errno == ENOENT ? Errc::NotFound : Errc::Io,
                            fmt::format("state file {}: cannot open it", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Error::fromErrno(Errc::Io, fmt::format("state file {}: cannot stat it", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError(Errc::InvalidArgument, "state file {} is not a regular file", path);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
    return makeError(Errc::Format, "{}: {} bytes, more than a state file can hold ({})", path,
                     st.st_size, kMaxFileBytes);
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        ::pread(fd.get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Error::fromErrno(Errc::Io, fmt::format("state file {}: cannot read it", path));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return parse(bytes, path);
}

const std::vector<uint8_t>* StateFile::find(std::string_view tag, uint32_t instance) const {
  for (const auto& s : sections_) {
    if (std::string_view(s.tag.data(), 4) == tag && s.instance == instance) return &s.bytes;
  }
  return nullptr;
}

size_t StateFile::count(std::string_view tag) const {
  return static_cast<size_t>(std::count_if(sections_.begin(), sections_.end(), [&](const auto& s) {
    return std::string_view(s.tag.data(), 4) == tag;
  }));
}

}  // namespace ember::vmm
