// EmbeddedInit: ember carries the init as a static x86-64 ELF executable (no interpreter to
// load: the initramfs holds no dynamic loader).
#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "vmm/init/EmbeddedInit.h"

namespace ember::init {
namespace {

template <typename T>
T at(std::span<const uint8_t> bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

TEST(EmbeddedInit, IsAStaticX86_64Executable) {
  std::span<const uint8_t> init = embeddedInit();
  ASSERT_GE(init.size(), sizeof(Elf64_Ehdr));
  auto header = at<Elf64_Ehdr>(init, 0);
  EXPECT_EQ(std::memcmp(header.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(header.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(header.e_ident[EI_DATA], ELFDATA2LSB);
  EXPECT_EQ(header.e_machine, EM_X86_64);
  EXPECT_TRUE(header.e_type == ET_EXEC || header.e_type == ET_DYN) << header.e_type;
  ASSERT_EQ(header.e_phentsize, sizeof(Elf64_Phdr));
  ASSERT_GT(header.e_phnum, 0);
  ASSERT_LE(header.e_phoff + size_t{header.e_phnum} * sizeof(Elf64_Phdr), init.size());
  bool loadable = false;
  for (size_t i = 0; i < header.e_phnum; ++i) {
    auto segment = at<Elf64_Phdr>(init, header.e_phoff + i * sizeof(Elf64_Phdr));
    EXPECT_NE(segment.p_type, uint32_t{PT_INTERP}) << "the init is dynamically linked";
    loadable = loadable || segment.p_type == PT_LOAD;
  }
  EXPECT_TRUE(loadable);
  EXPECT_GE(header.e_entry, 1u);
}

TEST(EmbeddedInit, IsTheInitThisBuildMade) {
  std::ifstream file(EMBER_INIT_FILE, std::ios::binary);
  ASSERT_TRUE(file.good()) << EMBER_INIT_FILE;
  std::vector<uint8_t> built{std::istreambuf_iterator<char>(file), {}};
  std::span<const uint8_t> embedded = embeddedInit();
  EXPECT_EQ(embedded.size(), built.size());
  EXPECT_TRUE(std::equal(embedded.begin(), embedded.end(), built.begin(), built.end()));
}

}  // namespace
}  // namespace ember::init
