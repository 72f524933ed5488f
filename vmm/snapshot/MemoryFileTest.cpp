// The snapshot's memory file: written with holes for zero pages, mapped back copy-on-write, and
// the refusals of a file that does not go with the state file (another snapshot's, cut short,
// not a memory file, another format).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vmm/snapshot/MemoryFile.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

using testing::TempDir;

const GuestRegionSpec kRegions[] = {{GuestAddress(0), 1 << 20}, {GuestAddress(4 << 20), 2 << 20}};
const MemoryFile::Id kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

GuestMemory ramWithData() {
  auto mem = GuestMemory::create(kRegions);
  EXPECT_TRUE(mem.ok());
  std::vector<uint8_t> page(4096, 0xa5);
  EXPECT_TRUE(mem->write(GuestAddress(0x3000), page).ok());
  EXPECT_TRUE(mem->write(GuestAddress((4 << 20) + 0x10000), page).ok());
  EXPECT_TRUE(mem->write(GuestAddress((6 << 20) - 4096), page).ok());  // the last page
  return std::move(mem).value();
}

TEST(MemoryFile, WrittenWithHolesAndMappedBackCopyOnWrite) {
  TempDir dir;
  std::string path = dir.at("mem");
  GuestMemory mem = ramWithData();
  auto written = MemoryFile::write(path, mem, kId);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->file_bytes, MemoryFile::kHeaderBytes + (3 << 20));
  EXPECT_EQ(written->data_bytes, MemoryFile::kHeaderBytes + 3 * 4096);
  EXPECT_EQ(std::filesystem::file_size(path), written->file_bytes);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "zero pages were written";

  auto fd = MemoryFile::open(path, kId, kRegions);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  auto restored = GuestMemory::mapFile(kRegions, fd->get(), MemoryFile::kHeaderBytes);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  for (const auto& r : mem.regions()) {
    std::vector<uint8_t> a(r.size), b(r.size);
    ASSERT_TRUE(mem.read(r.start, a).ok());
    ASSERT_TRUE(restored->read(r.start, b).ok());
    EXPECT_EQ(a, b) << "region at " << r.start.raw;
  }
  // Writes stay in memory: the file is the snapshot's, for the next restore too.
  std::vector<uint8_t> scribble(4096, 0x5a);
  ASSERT_TRUE(restored->write(GuestAddress(0x3000), scribble).ok());
  auto again = MemoryFile::open(path, kId, kRegions);
  ASSERT_TRUE(again.ok());
  auto second = GuestMemory::mapFile(kRegions, again->get(), MemoryFile::kHeaderBytes);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->readObj<uint8_t>(GuestAddress(0x3000)).value(), 0xa5);
}

TEST(MemoryFile, Hostile_RefusesAFileThatIsNotTheStateFilesOwn) {
  TempDir dir;
  std::string path = dir.at("mem");
  GuestMemory mem = ramWithData();
  ASSERT_TRUE(MemoryFile::write(path, mem, kId).ok());
  auto refused = [&](const std::string& p, const MemoryFile::Id& id,
                     std::span<const GuestRegionSpec> regions, const std::string& needle) {
    auto r = MemoryFile::open(p, id, regions);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  };
  MemoryFile::Id other = kId;
  other[0] ^= 1;
  refused(path, other, kRegions, "belongs to another snapshot");
  const GuestRegionSpec smaller[] = {{GuestAddress(0), 1 << 20}};
  refused(path, kId, smaller, "RAM regions");
  std::string cut = dir.at("cut");
  std::filesystem::copy_file(path, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(path) - 4096);
  refused(cut, kId, kRegions, "truncated");
  std::string junk = dir.write("junk", std::string(8192, 'x'));
  refused(junk, kId, kRegions, "not an ember memory file");
  std::string empty = dir.write("empty", "");
  refused(empty, kId, kRegions, "not an ember memory file");
  std::string version = dir.at("version");
  std::filesystem::copy_file(path, version);
  {
    std::fstream f(version, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.put(2);
  }
  refused(version, kId, kRegions, "another ember version");
  refused(dir.at("absent"), kId, kRegions, "cannot open");
}

}  // namespace
}  // namespace ember::vmm
