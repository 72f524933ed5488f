// CpioWriter against buffer-format.rst: exact header bytes for a file and the trailer (literal
// strings, independent of the writer's code), alignment for every name and data length mod 4,
// implicit parents made once, every refused name and mode leaving the archive unchanged, host
// files, and archives appended to an initrd image read back as the kernel reads concatenated
// archives. When GNU cpio is installed (a build package), `cpio -idm` extracts an archive and
// the tree is compared with what was written.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "vmm/CpioWriter.h"
#include "vmm/testing/CpioReader.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

using testing::CpioArchive;
using testing::CpioEntry;
using testing::readCpioArchive;
using testing::TempDir;
using Bytes = std::vector<uint8_t>;

Bytes bytesOf(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

std::string textOf(std::span<const uint8_t> b) {
  return std::string(b.begin(), b.end());
}

CpioArchive readBack(const Bytes& archive) {
  auto parsed = readCpioArchive(archive);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  if (!parsed.ok()) return {};
  EXPECT_EQ(parsed->end, archive.size()) << "bytes after the trailer";
  return std::move(parsed).value();
}

std::vector<std::string> namesOf(const CpioArchive& a) {
  std::vector<std::string> names;
  for (const auto& e : a.entries) names.push_back(e.name);
  return names;
}

// The trailer as GNU cpio writes it: all fields zero but nlink (1) and namesize (11), the name
// with its NUL (121 bytes) padded to 124.
const std::string kTrailer =
    "070701"
    "00000000"  // ino
    "00000000"  // mode
    "00000000"  // uid
    "00000000"  // gid
    "00000001"  // nlink
    "00000000"  // mtime
    "00000000"  // filesize
    "00000000"  // devmajor
    "00000000"  // devminor
    "00000000"  // rdevmajor
    "00000000"  // rdevminor
    "0000000b"  // namesize
    "00000000"  // check
    "TRAILER!!!" +
    std::string(4, '\0');

TEST(CpioWriter, AnEmptyArchiveIsTheTrailerAlone) {
  Bytes archive = CpioWriter().finish();
  EXPECT_EQ(textOf(archive), kTrailer);
  EXPECT_EQ(archive.size(), 124u);
  EXPECT_TRUE(readBack(archive).entries.empty());
}

TEST(CpioWriter, AFileEntryHasTheHeaderOfBufferFormatRst) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("/init", 0755, bytesOf("abc")).ok());
  Bytes archive = std::move(w).finish();
  const std::string entry =
      "070701"
      "00000001"  // ino
      "000081ed"  // mode: S_IFREG | 0755
      "00000000"  // uid
      "00000000"  // gid
      "00000001"  // nlink
      "00000000"  // mtime
      "00000003"  // filesize
      "00000000"
      "00000000"
      "00000000"
      "00000000"
      "00000005"  // namesize: "init" and its NUL
      "00000000"
      "init" +
      std::string(2, '\0') +         // 110 + 5 = 115, padded to 116
      "abc" + std::string(1, '\0');  // 3 bytes of data padded to 4
  EXPECT_EQ(textOf(archive), entry + kTrailer);
}

TEST(CpioWriter, HeaderNameAndDataAreFourAlignedForEveryLength) {
  CpioWriter w;
  std::vector<std::pair<std::string, Bytes>> files;
  for (size_t name_len = 1; name_len <= 8; ++name_len) {
    for (size_t data_len = 0; data_len <= 8; ++data_len) {
      std::string name = std::string(name_len - 1, 'n') + std::to_string(data_len);
      Bytes data(data_len);
      for (size_t i = 0; i < data_len; ++i) data[i] = static_cast<uint8_t>(0xa0 + name_len + i);
      ASSERT_TRUE(w.addFile(name, 0644, data).ok()) << name;
      files.emplace_back(name, data);
    }
  }
  Bytes archive = std::move(w).finish();
  CpioArchive a = readBack(archive);  // checks the padding bytes are zero
  ASSERT_EQ(a.entries.size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const CpioEntry& e = a.entries[i];
    EXPECT_EQ(e.offset % 4, 0u) << e.name;
    EXPECT_EQ(e.name, files[i].first);
    EXPECT_EQ(e.data, files[i].second) << e.name;
    EXPECT_EQ(e.mode, 0100644u);
  }
  EXPECT_EQ(archive.size() % 4, 0u);
}

TEST(CpioWriter, EveryEntryIsRootsWithMtimeZeroOneLinkAndItsOwnInode) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("bin/a", 0755, bytesOf("a")).ok());
  ASSERT_TRUE(w.addFile("bin/b", 0755, bytesOf("a")).ok());  // same bytes: still not a link
  ASSERT_TRUE(w.addSymlink("sbin", "bin").ok());
  ASSERT_TRUE(w.addDirectory("tmp", 01777).ok());
  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(a.entries.size(), 5u);
  std::set<uint32_t> inodes;
  for (const auto& e : a.entries) {
    EXPECT_EQ(e.uid, 0u) << e.name;
    EXPECT_EQ(e.gid, 0u) << e.name;
    EXPECT_EQ(e.mtime, 0u) << e.name;
    EXPECT_EQ(e.dev_major, 0u) << e.name;
    EXPECT_EQ(e.dev_minor, 0u) << e.name;
    EXPECT_EQ(e.nlink, (e.mode & S_IFMT) == S_IFDIR ? 2u : 1u) << e.name;
    EXPECT_NE(e.ino, 0u) << e.name;
    inodes.insert(e.ino);
  }
  EXPECT_EQ(inodes.size(), a.entries.size());
  EXPECT_EQ(a.entries[4].name, "tmp");
  EXPECT_EQ(a.entries[4].mode, 041777u);  // sticky bit kept
}

TEST(CpioWriter, MissingParentsAreMadeOnceBeforeTheirEntries) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("lib/modules/6.1/kernel/fs/fuse.ko", 0644, bytesOf("x")).ok());
  ASSERT_TRUE(w.addFile("lib/modules/6.1/kernel/fs/overlay.ko", 0644, bytesOf("y")).ok());
  ASSERT_TRUE(w.addFile("lib/modules/6.1/modules.dep", 0644, bytesOf("z")).ok());
  CpioArchive a = readBack(std::move(w).finish());
  std::vector<std::string> expected = {"lib",
                                       "lib/modules",
                                       "lib/modules/6.1",
                                       "lib/modules/6.1/kernel",
                                       "lib/modules/6.1/kernel/fs",
                                       "lib/modules/6.1/kernel/fs/fuse.ko",
                                       "lib/modules/6.1/kernel/fs/overlay.ko",
                                       "lib/modules/6.1/modules.dep"};
  EXPECT_EQ(namesOf(a), expected);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a.entries[i].mode, 040755u) << a.entries[i].name;
    EXPECT_TRUE(a.entries[i].data.empty());
  }
}

TEST(CpioWriter, ADirectoryKeepsTheModeItWasFirstAddedWith) {
  CpioWriter w;
  ASSERT_TRUE(w.addDirectory("etc", 0700).ok());
  ASSERT_TRUE(w.addFile("etc/passwd", 0644, bytesOf("root:x:0:0::/:/bin/sh\n")).ok());
  ASSERT_TRUE(w.addFile("usr/bin/env", 0755, bytesOf("#!")).ok());
  size_t before = w.size();
  // Asked again as it is: nothing written, whether it was added or made as a parent.
  EXPECT_TRUE(w.addDirectory("etc", 0700).ok());
  EXPECT_TRUE(w.addDirectory("/usr", 0755).ok());
  EXPECT_EQ(w.size(), before);
  // With another mode: refused, because the entry is already written.
  auto r = w.addDirectory("etc", 0755);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  EXPECT_NE(r.error().message.find("0700"), std::string::npos) << r.error().message;
  EXPECT_FALSE(w.addDirectory("usr/bin", 0700).ok());
  EXPECT_EQ(w.size(), before);
  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(a.entries.size(), 5u);
  EXPECT_EQ(a.entries[0].mode, 040700u);
  EXPECT_EQ(a.entries[2].name, "usr");
  EXPECT_EQ(a.entries[2].mode, 040755u);
}

TEST(CpioWriter, RefusesBadNamesAndLeavesTheArchiveUnchanged) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("init", 0755, bytesOf("#!/bin/sh\n")).ok());
  const size_t before = w.size();
  const std::string_view with_nul("a\0b", 3);
  const std::vector<std::string_view> bad = {
      "",      "/",      "//init2",  "a//b",   "a/",         "./a",         "a/./b",
      "../a",  "a/../b", "a/..",     with_nul, "TRAILER!!!", "/TRAILER!!!", "init",
      "/init", "init/x", "init/x/y",
  };
  for (std::string_view name : bad) {
    auto file = w.addFile(name, 0644, bytesOf("data"));
    EXPECT_FALSE(file.ok()) << "file " << name;
    if (!file.ok()) {
      EXPECT_EQ(file.error().code, Errc::InvalidArgument) << name;
    }
    EXPECT_FALSE(w.addDirectory(name, 0755).ok()) << "directory " << name;
    EXPECT_FALSE(w.addSymlink(name, "target").ok()) << "symlink " << name;
    EXPECT_FALSE(w.addCharDevice(name, 0600, 5, 1).ok()) << "device " << name;
    EXPECT_EQ(w.size(), before) << name;
  }
  // A name below TRAILER!!! is an ordinary name.
  EXPECT_TRUE(w.addFile("TRAILER!!!.d/x", 0644, {}).ok());
  CpioArchive a = readBack(std::move(w).finish());
  EXPECT_EQ(namesOf(a), (std::vector<std::string>{"init", "TRAILER!!!.d", "TRAILER!!!.d/x"}));
}

TEST(CpioWriter, NamesUpToPathMaxFit) {
  CpioWriter w;
  std::string longest = std::string(CpioWriter::kMaxNameSize - 2, 'x') + "y";  // 4095 bytes
  ASSERT_TRUE(w.addFile(longest, 0644, bytesOf("1")).ok());
  // A leading '/' is not part of the name.
  EXPECT_TRUE(w.addFile("/" + std::string(CpioWriter::kMaxNameSize - 1, 'z'), 0644, {}).ok());
  auto r = w.addFile(std::string(CpioWriter::kMaxNameSize, 'w'), 0644, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(a.entries.size(), 2u);
  EXPECT_EQ(a.entries[0].name, longest);
}

TEST(CpioWriter, RefusesModesBeyondThePermissionBits) {
  CpioWriter w;
  for (uint32_t mode : {0100644u, 010000u, 0xffffffffu}) {
    EXPECT_FALSE(w.addFile("f", mode, {}).ok()) << std::oct << mode;
    EXPECT_FALSE(w.addDirectory("d", mode).ok()) << std::oct << mode;
    EXPECT_FALSE(w.addCharDevice("c", mode, 1, 3).ok()) << std::oct << mode;
  }
  EXPECT_EQ(w.size(), 0u);
  // Not even for a directory that is there: its type bits in the mode are refused too.
  ASSERT_TRUE(w.addDirectory("d", 0755).ok());
  const size_t with_d = w.size();
  EXPECT_FALSE(w.addDirectory("d", 040755).ok());
  EXPECT_EQ(w.size(), with_d);
  EXPECT_TRUE(w.addFile("f", 07777, {}).ok());
  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(a.entries.size(), 2u);
  EXPECT_EQ(a.entries[1].mode, 0107777u);
}

TEST(CpioWriter, SymlinksCarryTheirTargetAsDataWithoutANul) {
  CpioWriter w;
  ASSERT_TRUE(w.addSymlink("bin/sh", "busybox").ok());
  ASSERT_TRUE(w.addSymlink("lib64", "/usr/lib64").ok());
  std::string longest(CpioWriter::kMaxSymlinkTarget, 't');
  ASSERT_TRUE(w.addSymlink("long", longest).ok());
  EXPECT_FALSE(w.addSymlink("empty", "").ok());
  EXPECT_FALSE(w.addSymlink("nul", std::string_view("a\0b", 3)).ok());
  EXPECT_FALSE(w.addSymlink("too-long", longest + "t").ok());
  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(namesOf(a), (std::vector<std::string>{"bin", "bin/sh", "lib64", "long"}));
  EXPECT_EQ(a.entries[1].mode, 0120777u);
  EXPECT_EQ(textOf(a.entries[1].data), "busybox");
  EXPECT_EQ(textOf(a.entries[2].data), "/usr/lib64");
  EXPECT_EQ(textOf(a.entries[3].data), longest);
}

TEST(CpioWriter, CharacterDevicesCarryTheirNumberInRdev) {
  CpioWriter w;
  ASSERT_TRUE(w.addCharDevice("dev/console", 0600, 5, 1).ok());
  ASSERT_TRUE(w.addCharDevice("dev/big", 0666, 0x12345678, 0xfedcba98).ok());
  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(a.entries.size(), 3u);
  EXPECT_EQ(a.entries[1].name, "dev/console");
  EXPECT_EQ(a.entries[1].mode, 020600u);
  EXPECT_EQ(a.entries[1].rdev_major, 5u);
  EXPECT_EQ(a.entries[1].rdev_minor, 1u);
  EXPECT_TRUE(a.entries[1].data.empty());
  EXPECT_EQ(a.entries[2].rdev_major, 0x12345678u);
  EXPECT_EQ(a.entries[2].rdev_minor, 0xfedcba98u);
}

TEST(CpioWriter, HostFilesAreCopiedAndUnreadableOnesRefused) {
  TempDir dir;
  Bytes big(1 << 20 | 3);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 13 + (i >> 11));
  std::string path = dir.write("module.ko", big);

  CpioWriter w;
  ASSERT_TRUE(w.addHostFile("lib/modules/x/module.ko", 0644, path).ok());
  const size_t before = w.size();
  auto missing = w.addHostFile("missing", 0644, dir.at("no-such-file"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  EXPECT_NE(missing.error().message.find("no-such-file"), std::string::npos);
  EXPECT_FALSE(w.addHostFile("directory", 0644, dir.path()).ok());
  EXPECT_FALSE(w.addHostFile("fifo", 0644, dir.fifo("pipe")).ok());  // refused, not waited on
  // The name is checked before the host file is looked at.
  auto bad_name = w.addHostFile("a/../b", 0644, dir.at("no-such-file"));
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().code, Errc::InvalidArgument);
  EXPECT_EQ(w.size(), before);

  CpioArchive a = readBack(std::move(w).finish());
  ASSERT_EQ(a.entries.size(), 4u);
  EXPECT_EQ(a.entries[3].name, "lib/modules/x/module.ko");
  EXPECT_EQ(a.entries[3].mode, 0100644u);
  EXPECT_EQ(a.entries[3].data, big);
}

TEST(CpioWriter, FinishLeavesAnEmptyWriter) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("a", 0644, bytesOf("1")).ok());
  Bytes first = std::move(w).finish();
  EXPECT_EQ(w.size(), 0u);  // NOLINT(bugprone-use-after-move): the documented state
  ASSERT_TRUE(w.addFile("a", 0644, bytesOf("1")).ok());
  EXPECT_EQ(std::move(w).finish(), first);
}

TEST(CpioWriter, AppendedArchivesStartFourAlignedAfterZeroPadding) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("init", 0755, bytesOf("new")).ok());
  const Bytes archive = std::move(w).finish();

  for (size_t image_size : {0, 1, 2, 3, 4, 5, 7, 8}) {
    Bytes image(image_size, 0xee);
    appendArchive(image, archive);
    size_t start = (image_size + 3) / 4 * 4;
    ASSERT_EQ(image.size(), start + archive.size()) << image_size;
    for (size_t i = image_size; i < start; ++i) EXPECT_EQ(image[i], 0) << image_size;
    EXPECT_TRUE(std::equal(archive.begin(), archive.end(), image.begin() + start));
  }

  // An initrd that is itself a newc archive (of odd length, as another tool may leave it): the
  // kernel's way of reading concatenated archives finds both.
  CpioWriter first;
  ASSERT_TRUE(first.addFile("init", 0755, bytesOf("old")).ok());
  ASSERT_TRUE(first.addFile("etc/hostname", 0644, bytesOf("guest\n")).ok());
  Bytes image = std::move(first).finish();
  image.push_back(0);  // trailing zero bytes, skipped
  appendArchive(image, archive);
  auto archives = testing::readConcatenatedArchives(image);
  ASSERT_TRUE(archives.ok()) << archives.error().message;
  ASSERT_EQ(archives->size(), 2u);
  EXPECT_EQ(namesOf((*archives)[0]), (std::vector<std::string>{"init", "etc", "etc/hostname"}));
  ASSERT_EQ(namesOf((*archives)[1]), (std::vector<std::string>{"init"}));
  EXPECT_EQ(textOf((*archives)[1].entries[0].data), "new");
}

// The test reader is strict enough to catch what the writer must get right.
TEST(CpioWriter, TheTestReaderRefusesMisalignedOrUnterminatedArchives) {
  CpioWriter w;
  ASSERT_TRUE(w.addFile("ab", 0644, bytesOf("x")).ok());
  const Bytes good = std::move(w).finish();
  ASSERT_TRUE(readCpioArchive(good).ok());

  Bytes truncated(good.begin(), good.end() - static_cast<long>(kTrailer.size()));
  EXPECT_FALSE(readCpioArchive(truncated).ok());
  Bytes dirty_padding = good;
  dirty_padding[110 + 3] = 'p';  // the name "ab\0" ends at 113; 113..115 pad
  EXPECT_FALSE(readCpioArchive(dirty_padding).ok());
  Bytes shifted = good;
  shifted.insert(shifted.begin(), 0);
  EXPECT_FALSE(readCpioArchive(shifted, 1).ok());
  Bytes bad_hex = good;
  bad_hex[6] = 'g';
  EXPECT_FALSE(readCpioArchive(bad_hex).ok());
}

// GNU cpio, reading what the writer wrote, makes the tree that was asked for.
TEST(CpioWriter, GnuCpioExtractsTheArchive) {
  if (std::system("command -v cpio >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "cpio is not installed (tools/lib.sh lists it as a build package)";
  }
  TempDir dir;
  CpioWriter w;
  ASSERT_TRUE(w.addDirectory("etc", 0750).ok());
  ASSERT_TRUE(w.addFile("etc/motd", 0640, bytesOf("hello\n")).ok());
  ASSERT_TRUE(w.addFile("init", 0755, bytesOf("#!/bin/sh\nexec /bin/sh\n")).ok());
  ASSERT_TRUE(w.addFile("empty", 0600, {}).ok());
  ASSERT_TRUE(w.addFile("lib/modules/6.1.0/kernel/fs/fuse/fuse.ko", 0644,
                        bytesOf("\x7f"
                                "ELF"))
                  .ok());
  ASSERT_TRUE(w.addSymlink("bin/sh", "busybox").ok());
  ASSERT_TRUE(w.addSymlink("lib64", "/lib").ok());
  Bytes archive = std::move(w).finish();
  std::string file = dir.write("initramfs.cpio", archive);
  std::string root = dir.mkdir("root");
  std::string cmd = "cpio -idm --quiet --no-absolute-filenames -D '" + root + "' -F '" + file +
                    "' 2>'" + dir.at("cpio.log") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  namespace fs = std::filesystem;
  auto perms = [&](const std::string& rel) {
    return static_cast<unsigned>(fs::symlink_status(root + "/" + rel).permissions());
  };
  auto contents = [&](const std::string& rel) {
    std::ifstream in(root + "/" + rel, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_TRUE(fs::is_directory(root + "/etc"));
  EXPECT_EQ(perms("etc"), 0750u);
  EXPECT_EQ(contents("etc/motd"), "hello\n");
  EXPECT_EQ(perms("etc/motd"), 0640u);
  EXPECT_EQ(contents("init"), "#!/bin/sh\nexec /bin/sh\n");
  EXPECT_EQ(perms("init"), 0755u);
  EXPECT_TRUE(fs::is_regular_file(root + "/empty"));
  EXPECT_EQ(fs::file_size(root + "/empty"), 0u);
  EXPECT_EQ(perms("empty"), 0600u);
  EXPECT_EQ(contents("lib/modules/6.1.0/kernel/fs/fuse/fuse.ko"),
            "\x7f"
            "ELF");
  EXPECT_EQ(perms("lib/modules/6.1.0/kernel/fs"), 0755u);
  EXPECT_TRUE(fs::is_symlink(root + "/bin/sh"));
  EXPECT_EQ(fs::read_symlink(root + "/bin/sh"), "busybox");
  EXPECT_EQ(fs::read_symlink(root + "/lib64"), "/lib");
  // Nothing else: the extracted tree has exactly the entries written.
  std::set<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    found.insert(e.path().lexically_relative(root).string());  // symlinks not followed
  }
  std::set<std::string> expected = {"etc",
                                    "etc/motd",
                                    "init",
                                    "empty",
                                    "lib",
                                    "lib/modules",
                                    "lib/modules/6.1.0",
                                    "lib/modules/6.1.0/kernel",
                                    "lib/modules/6.1.0/kernel/fs",
                                    "lib/modules/6.1.0/kernel/fs/fuse",
                                    "lib/modules/6.1.0/kernel/fs/fuse/fuse.ko",
                                    "bin",
                                    "bin/sh",
                                    "lib64"};
  EXPECT_EQ(found, expected);
}

}  // namespace
}  // namespace ember::vmm
