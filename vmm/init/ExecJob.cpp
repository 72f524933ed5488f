// ExecJob: encoding and strict decoding of the job records (format in ExecJob.h).
#include "vmm/init/ExecJob.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>

#include "vmm/init/InitError.h"

namespace ember::init {
namespace {

constexpr std::string_view kVersion = "1";

// The virtio-fs tag is a 36-byte field of the device's configuration space (virtio spec 1.2,
// 5.11.4 "Device configuration layout": char tag[36], NUL-padded).
constexpr size_t kMaxTagBytes = 36;

// (uid_t)-1 and (gid_t)-1 mean "leave unchanged" to setresuid(2)/setresgid(2) and chown(2); no
// job may ask for them.
constexpr uint32_t kMaxId = std::numeric_limits<uint32_t>::max() - 1;

constexpr std::array<std::string_view, 4> kModuleSuffixes = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};

struct KeySpec {
  std::string_view key;
  size_t values;
  bool repeated;
  bool required;
};

constexpr std::array<KeySpec, 13> kKeys = {{
    {"version", 1, false, true},
    {"module", 1, true, false},
    {"root", 2, false, true},
    {"share", 3, true, false},
    {"cwd", 1, false, true},
    {"env", 1, true, false},
    {"arg", 1, true, false},
    {"uid", 1, false, true},
    {"gid", 1, false, true},
    {"stdout_port", 1, false, true},
    {"stderr_port", 1, false, true},
    {"status_port", 1, false, true},
    {"verbose", 1, false, false},
}};

const KeySpec* findKey(std::string_view key) {
  for (const KeySpec& spec : kKeys) {
    if (spec.key == key) {
      return &spec;
    }
  }
  return nullptr;
}

// A value as a message shows it: quoted, bytes outside printable ASCII as \xNN.
std::string quoted(std::string_view value) {
  std::string out = "\"";
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out + "\"";
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Each check returns the problem with the value, or nullopt when it is acceptable.
using Problem = std::optional<std::string>;

Problem checkAbsolute(std::string_view what, std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return std::string(what) + " " + quoted(path) + " is not absolute";
  }
  return std::nullopt;
}

Problem parseAccess(std::string_view value, Access* access) {
  if (value == "ro") {
    *access = Access::ReadOnly;
  } else if (value == "rw") {
    *access = Access::ReadWrite;
  } else {
    return "access " + quoted(value) + " is neither ro nor rw";
  }
  return std::nullopt;
}

Problem checkTag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagBytes) {
    return "virtio-fs tag " + quoted(tag) + " must have 1 to 36 bytes";
  }
  return std::nullopt;
}

// The init creates /dev/virtio-ports/NAME for each port, so a name must be one path component.
Problem checkPort(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return "port name " + quoted(name) + " is not a file name";
  }
  return std::nullopt;
}

Problem checkModule(std::string_view path) {
  if (Problem p = checkAbsolute("module path", path)) {
    return p;
  }
  for (std::string_view suffix : kModuleSuffixes) {
    if (endsWith(path, suffix)) {
      return std::nullopt;
    }
  }
  return "module " + quoted(path) + " is not a .ko, .ko.xz, .ko.zst or .ko.gz file";
}

Problem checkEnv(std::string_view entry) {
  if (entry.find('=') == std::string_view::npos || entry.front() == '=') {
    return "environment entry " + quoted(entry) + " is not NAME=VALUE";
  }
  return std::nullopt;
}

// Canonical decimal only: digits, no sign, no leading zero, at most kMaxId.
Problem parseId(std::string_view text, uint32_t* id) {
  uint64_t value = 0;
  bool digits = !text.empty() && !(text.size() > 1 && text.front() == '0');
  for (char c : text) {
    digits = digits && c >= '0' && c <= '9';
  }
  if (digits) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    digits = ec == std::errc() && end == text.data() + text.size();
  }
  if (!digits || value > kMaxId) {
    return quoted(text) + " is not a decimal id from 0 to 4294967294";
  }
  *id = static_cast<uint32_t>(value);
  return std::nullopt;
}

// Stores one record's values into the job, or says what is wrong with them.
Problem apply(ExecJob& job, std::string_view key, const std::vector<std::string_view>& v) {
  if (key == "version") {
    if (v[0] != kVersion) {
      return "unsupported version " + quoted(v[0]) + " (this init reads version 1)";
    }
  } else if (key == "module") {
    if (Problem p = checkModule(v[0])) {
      return p;
    }
    job.modules.emplace_back(v[0]);
  } else if (key == "root") {
    if (Problem p = checkTag(v[0])) {
      return p;
    }
    job.root_tag = v[0];
    return parseAccess(v[1], &job.root_access);
  } else if (key == "share") {
    ExecShare share{std::string(v[0]), std::string(v[1]), Access::ReadOnly};
    if (Problem p = checkTag(v[0])) {
      return p;
    }
    if (Problem p = checkAbsolute("guest path", v[1])) {
      return p;
    }
    if (v[1] == "/") {
      return std::string("a share cannot be mounted on / (that is the root record's)");
    }
    if (Problem p = parseAccess(v[2], &share.access)) {
      return p;
    }
    job.shares.push_back(std::move(share));
  } else if (key == "cwd") {
    job.cwd = v[0];
    return checkAbsolute("working directory", v[0]);
  } else if (key == "env") {
    if (Problem p = checkEnv(v[0])) {
      return p;
    }
    job.env.emplace_back(v[0]);
  } else if (key == "arg") {
    job.argv.emplace_back(v[0]);
  } else if (key == "uid") {
    return parseId(v[0], &job.uid);
  } else if (key == "gid") {
    return parseId(v[0], &job.gid);
  } else if (key == "stdout_port" || key == "stderr_port" || key == "status_port") {
    std::string& port = key == "stdout_port"   ? job.stdout_port
                        : key == "stderr_port" ? job.stderr_port
                                               : job.status_port;
    port = v[0];
    return checkPort(v[0]);
  } else if (key == "verbose") {
    if (v[0] != "0" && v[0] != "1") {
      return "verbose " + quoted(v[0]) + " is neither 0 nor 1";
    }
    job.verbose = v[0] == "1";
  }
  return std::nullopt;
}

void addRecord(std::string& out, std::string_view key, std::initializer_list<std::string_view> v) {
  out.append(key).push_back('\0');
  for (std::string_view value : v) {
    out.append(value).push_back('\0');
  }
}

std::string_view accessName(Access access) {
  return access == Access::ReadOnly ? "ro" : "rw";
}

bool hasNul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

}  // namespace

std::string ExecJob::encode() const {
  std::string out;
  addRecord(out, "version", {kVersion});
  for (const std::string& module : modules) {
    addRecord(out, "module", {module});
  }
  addRecord(out, "root", {root_tag, accessName(root_access)});
  for (const ExecShare& share : shares) {
    addRecord(out, "share", {share.tag, share.guest_path, accessName(share.access)});
  }
  addRecord(out, "cwd", {cwd});
  for (const std::string& entry : env) {
    addRecord(out, "env", {entry});
  }
  for (const std::string& arg : argv) {
    addRecord(out, "arg", {arg});
  }
  addRecord(out, "uid", {std::to_string(uid)});
  addRecord(out, "gid", {std::to_string(gid)});
  addRecord(out, "stdout_port", {stdout_port});
  addRecord(out, "stderr_port", {stderr_port});
  addRecord(out, "status_port", {status_port});
  addRecord(out, "verbose", {verbose ? "1" : "0"});
  return out;
}

std::optional<std::string> ExecJob::validate() const {
  // A NUL inside a value would end it early on the wire: refused here, since the decoded job
  // could not tell.
  std::vector<std::string_view> texts = {root_tag, cwd, stdout_port, stderr_port, status_port};
  texts.insert(texts.end(), modules.begin(), modules.end());
  texts.insert(texts.end(), env.begin(), env.end());
  texts.insert(texts.end(), argv.begin(), argv.end());
  for (const ExecShare& share : shares) {
    texts.push_back(share.tag);
    texts.push_back(share.guest_path);
  }
  for (std::string_view text : texts) {
    if (hasNul(text)) {
      return "value " + quoted(text) + " contains a NUL byte";
    }
  }
  // Otherwise the rules are decode()'s, applied to exactly the bytes the host would write.
  std::string error;
  if (!decode(encode(), &error)) {
    return error;
  }
  return std::nullopt;
}

std::optional<ExecJob> ExecJob::decode(std::string_view bytes, std::string* error) {
  ExecJob job;
  std::map<std::string_view, size_t> seen;  // singleton key -> the record that gave it
  size_t pos = 0;
  size_t index = 0;
  // The next NUL-terminated token, or nullopt when the bytes end before its NUL.
  auto token = [&]() -> std::optional<std::string_view> {
    size_t nul = bytes.find('\0', pos);
    if (nul == std::string_view::npos) {
      return std::nullopt;
    }
    std::string_view t = bytes.substr(pos, nul - pos);
    pos = nul + 1;
    return t;
  };
  while (pos < bytes.size()) {
    ++index;
    std::string prefix = "record " + std::to_string(index);
    size_t key_start = pos;
    std::optional<std::string_view> key = token();
    if (!key) {
      setError(error,
               prefix + ": key " + quoted(bytes.substr(key_start)) + " has no terminating NUL");
      return std::nullopt;
    }
    const KeySpec* spec = findKey(*key);
    if (spec == nullptr) {
      setError(error, prefix + ": unknown key " + quoted(*key));
      return std::nullopt;
    }
    prefix += " (" + std::string(*key) + ")";
    if ((index == 1) != (*key == "version")) {
      setError(error, prefix + (index == 1 ? ": the first record must be version"
                                           : ": version must be the first record only"));
      return std::nullopt;
    }
    std::vector<std::string_view> values;
    while (values.size() < spec->values) {
      if (pos == bytes.size()) {
        setError(error, prefix + ": expects " + std::to_string(spec->values) +
                            (spec->values == 1 ? " value, has " : " values, has ") +
                            std::to_string(values.size()));
        return std::nullopt;
      }
      size_t value_start = pos;
      std::optional<std::string_view> value = token();
      if (!value) {
        setError(error, prefix + ": value " + quoted(bytes.substr(value_start)) +
                            " has no terminating NUL");
        return std::nullopt;
      }
      values.push_back(*value);
    }
    if (!spec->repeated) {
      auto [it, first] = seen.emplace(spec->key, index);
      if (!first) {
        setError(error, prefix + ": duplicate (already given by record " +
                            std::to_string(it->second) + ")");
        return std::nullopt;
      }
    }
    if (Problem p = apply(job, *key, values)) {
      setError(error, prefix + ": " + *p);
      return std::nullopt;
    }
  }
  for (const KeySpec& spec : kKeys) {
    if (spec.required && !seen.contains(spec.key)) {
      setError(error, "missing required record " + std::string(spec.key));
      return std::nullopt;
    }
  }
  return job;
}

}  // namespace ember::init
