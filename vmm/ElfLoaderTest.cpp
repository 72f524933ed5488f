// ElfLoader: ELF32/ELF64 parsing (PVH note, truncation, corrupt headers), loading, image files.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "vmm/ElfLoader.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

using Bytes = std::vector<uint8_t>;

// Layout of every generated image: headers at 0, program headers right after, an optional note
// segment at kNoteOffset, then a text segment and a data+bss segment.
constexpr uint64_t kNoteOffset = 0x200;
constexpr uint64_t kTextOffset = 0x1000, kTextSize = 0x200, kTextAddr = 0x200000;
constexpr uint64_t kDataOffset = 0x1200, kDataFileSize = 0x100, kDataMemSize = 0x3000,
                   kDataAddr = 0x300000;
constexpr uint64_t kImageSize = kDataOffset + kDataFileSize;
constexpr uint64_t kPlainEntry = 0x200040;
constexpr uint32_t kPvhEntry = 0x200010;
constexpr uint32_t kPhys32EntryNote = 18;  // XEN_ELFNOTE_PHYS32_ENTRY

template <typename T>
T getAt(const Bytes& file, size_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof value);
  return value;
}

template <typename T>
void putAt(Bytes& file, size_t offset, const T& value) {
  if (file.size() < offset + sizeof value) {
    file.resize(offset + sizeof value);
  }
  std::memcpy(file.data() + offset, &value, sizeof value);
}

// Appends one note (header, padded name, padded descriptor) to `out`.
void appendNote(Bytes& out, const char* name, uint32_t type, const Bytes& desc) {
  Elf64_Nhdr nh{};
  nh.n_namesz = static_cast<uint32_t>(std::strlen(name) + 1);
  nh.n_descsz = static_cast<uint32_t>(desc.size());
  nh.n_type = type;
  size_t at = out.size();
  putAt(out, at, nh);
  Bytes padded_name((nh.n_namesz + 3) & ~3u, 0);
  std::memcpy(padded_name.data(), name, nh.n_namesz);
  out.insert(out.end(), padded_name.begin(), padded_name.end());
  Bytes padded_desc((desc.size() + 3) & ~size_t{3}, 0);
  std::copy(desc.begin(), desc.end(), padded_desc.begin());
  out.insert(out.end(), padded_desc.begin(), padded_desc.end());
}

Bytes pvhNote(const Bytes& desc) {
  Bytes notes;
  appendNote(notes, "GNU", 3, Bytes{1, 2, 3, 4, 5, 6, 7, 8});  // an unrelated note first
  appendNote(notes, "Xen", kPhys32EntryNote, desc);
  return notes;
}

Bytes le32(uint32_t v) {
  Bytes b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

Bytes le64(uint64_t v) {
  Bytes b(8);
  std::memcpy(b.data(), &v, 8);
  return b;
}

// Builds an image of class Ehdr/Phdr with a text segment, a data segment with .bss and, when
// `notes` is not empty, a PT_NOTE segment holding them.
template <typename Ehdr, typename Phdr>
Bytes buildElf(const Bytes& notes, uint16_t machine) {
  Bytes file(kImageSize, 0);
  Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = sizeof(Ehdr) == sizeof(Elf64_Ehdr) ? ELFCLASS64 : ELFCLASS32;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = machine;
  eh.e_version = EV_CURRENT;
  eh.e_entry = kPlainEntry;
  eh.e_phoff = sizeof(Ehdr);
  eh.e_ehsize = sizeof(Ehdr);
  eh.e_phentsize = sizeof(Phdr);
  eh.e_phnum = notes.empty() ? 2 : 3;

  std::vector<Phdr> phdrs(eh.e_phnum);
  phdrs[0].p_type = PT_LOAD;
  phdrs[0].p_offset = kTextOffset;
  phdrs[0].p_vaddr = phdrs[0].p_paddr = kTextAddr;
  phdrs[0].p_filesz = phdrs[0].p_memsz = kTextSize;
  phdrs[1].p_type = PT_LOAD;
  phdrs[1].p_offset = kDataOffset;
  phdrs[1].p_vaddr = phdrs[1].p_paddr = kDataAddr;
  phdrs[1].p_filesz = kDataFileSize;
  phdrs[1].p_memsz = kDataMemSize;
  if (!notes.empty()) {
    phdrs[2].p_type = PT_NOTE;
    phdrs[2].p_offset = kNoteOffset;
    phdrs[2].p_filesz = notes.size();
    std::copy(notes.begin(), notes.end(), file.begin() + kNoteOffset);
  }
  putAt(file, 0, eh);
  for (size_t i = 0; i < phdrs.size(); ++i) {
    putAt(file, eh.e_phoff + i * sizeof(Phdr), phdrs[i]);
  }
  for (uint64_t i = 0; i < kTextSize; ++i) {
    file[kTextOffset + i] = static_cast<uint8_t>(0x10 + i);
  }
  for (uint64_t i = 0; i < kDataFileSize; ++i) {
    file[kDataOffset + i] = static_cast<uint8_t>(0xd0 ^ i);
  }
  return file;
}

Bytes elf64(const Bytes& notes = {}) {
  return buildElf<Elf64_Ehdr, Elf64_Phdr>(notes, EM_X86_64);
}
Bytes elf32(const Bytes& notes = {}) {
  return buildElf<Elf32_Ehdr, Elf32_Phdr>(notes, EM_386);
}

// Rewrites program header `index` of an ELF64 image.
void editPhdr64(Bytes& file, size_t index, const std::function<void(Elf64_Phdr&)>& edit) {
  size_t at = sizeof(Elf64_Ehdr) + index * sizeof(Elf64_Phdr);
  auto ph = getAt<Elf64_Phdr>(file, at);
  edit(ph);
  putAt(file, at, ph);
}

void editEhdr64(Bytes& file, const std::function<void(Elf64_Ehdr&)>& edit) {
  auto eh = getAt<Elf64_Ehdr>(file, 0);
  edit(eh);
  putAt(file, 0, eh);
}

// Offset of the PVH note's header inside a pvhNote() image (after the 20-byte GNU note).
constexpr size_t kPvhNoteHeader = kNoteOffset + 12 + 4 + 8;

void expectTwoSegments(const ElfImage& image) {
  ASSERT_EQ(image.segments.size(), 2u);
  EXPECT_EQ(image.segments[0].file_offset, kTextOffset);
  EXPECT_EQ(image.segments[0].file_size, kTextSize);
  EXPECT_EQ(image.segments[0].guest_addr, kTextAddr);
  EXPECT_EQ(image.segments[0].mem_size, kTextSize);
  EXPECT_EQ(image.segments[1].file_offset, kDataOffset);
  EXPECT_EQ(image.segments[1].file_size, kDataFileSize);
  EXPECT_EQ(image.segments[1].guest_addr, kDataAddr);
  EXPECT_EQ(image.segments[1].mem_size, kDataMemSize);
  EXPECT_EQ(image.lowest, kTextAddr);
  EXPECT_EQ(image.highest, kDataAddr + kDataMemSize);
}

TEST(ElfLoader, ParsesElf64WithFourBytePvhNote) {
  auto file = elf64(pvhNote(le32(kPvhEntry)));
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_TRUE(image->is64);
  EXPECT_EQ(image->entry, kPlainEntry);
  ASSERT_TRUE(image->pvh_entry.has_value());
  EXPECT_EQ(*image->pvh_entry, kPvhEntry);
  expectTwoSegments(*image);
}

TEST(ElfLoader, ParsesElf64WithEightBytePvhNote) {
  auto file = elf64(pvhNote(le64(0xfffffff0)));
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;
  ASSERT_TRUE(image->pvh_entry.has_value());
  EXPECT_EQ(*image->pvh_entry, 0xfffffff0u);
}

TEST(ElfLoader, ParsesElf32WithPvhNote) {
  auto file = elf32(pvhNote(le32(kPvhEntry)));
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_FALSE(image->is64);
  ASSERT_TRUE(image->pvh_entry.has_value());
  EXPECT_EQ(*image->pvh_entry, kPvhEntry);
  expectTwoSegments(*image);
}

TEST(ElfLoader, Elf64WithoutNoteBootsAtItsPlainEntry) {
  auto file = elf64();
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_TRUE(image->is64);
  EXPECT_FALSE(image->pvh_entry.has_value());
  EXPECT_EQ(image->entry, kPlainEntry);
  expectTwoSegments(*image);
}

TEST(ElfLoader, Elf64WithUnrelatedNotesOnlyHasNoPvhEntry) {
  Bytes notes;
  appendNote(notes, "GNU", 3, Bytes(8, 0x11));
  appendNote(notes, "Xen", 5, le32(kPvhEntry));                // a Xen note of another type
  appendNote(notes, "Xe", kPhys32EntryNote, le32(kPvhEntry));  // right type, wrong owner
  auto image = parseElf(elf64(notes));
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_FALSE(image->pvh_entry.has_value());
}

TEST(ElfLoader, RefusesElf32WithoutPvhNote) {
  auto image = parseElf(elf32());
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.error().code, Errc::Format);
  EXPECT_NE(image.error().message.find("PVH"), std::string::npos) << image.error().message;
}

TEST(ElfLoader, LooksLikeElfChecksTheMagicOnly) {
  EXPECT_TRUE(looksLikeElf(elf64()));
  EXPECT_FALSE(looksLikeElf(Bytes{0x7f, 'E', 'L'}));
  EXPECT_FALSE(looksLikeElf(Bytes{'M', 'Z', 0, 0, 0, 0}));
  EXPECT_FALSE(looksLikeElf(Bytes{}));
}

// Every prefix of a valid image, copied to a buffer of exactly that size (so that ASan catches an
// over-read), either fails to parse or parses into an image whose segments lie inside it.
void checkEveryPrefix(const Bytes& full) {
  for (size_t len = 0; len <= full.size(); ++len) {
    Bytes prefix(full.begin(), full.begin() + static_cast<long>(len));
    auto image = parseElf(prefix);
    if (!image.ok()) {
      EXPECT_EQ(image.error().code, Errc::Format) << "prefix length " << len;
      continue;
    }
    for (const auto& seg : image->segments) {
      EXPECT_LE(seg.file_offset + seg.file_size, len) << "prefix length " << len;
    }
    // The last segment's bytes end the file, so only the whole image can parse.
    EXPECT_EQ(len, full.size());
  }
}

TEST(ElfLoader, EveryTruncationIsRefusedWithoutOverreading) {
  checkEveryPrefix(elf64(pvhNote(le32(kPvhEntry))));
  checkEveryPrefix(elf64(pvhNote(le64(kPvhEntry))));
  checkEveryPrefix(elf32(pvhNote(le32(kPvhEntry))));
  checkEveryPrefix(elf64());
}

struct Corruption {
  const char* name;
  std::function<void(Bytes&)> apply;
};

TEST(ElfLoader, RefusesCorruptHeaders) {
  const std::vector<Corruption> corruptions = {
      {"bad magic", [](Bytes& f) { f[1] = 'X'; }},
      {"class none", [](Bytes& f) { f[EI_CLASS] = ELFCLASSNONE; }},
      {"class 3", [](Bytes& f) { f[EI_CLASS] = 3; }},
      {"big-endian", [](Bytes& f) { f[EI_DATA] = ELFDATA2MSB; }},
      {"no data encoding", [](Bytes& f) { f[EI_DATA] = ELFDATANONE; }},
      {"machine ARM", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_machine = EM_ARM; }); }},
      {"shared object", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_type = ET_DYN; }); }},
      {"relocatable", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_type = ET_REL; }); }},
      {"phentsize 32", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phentsize = 32; }); }},
      {"phentsize 64", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phentsize = 64; }); }},
      {"phnum 0", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phnum = 0; }); }},
      {"phoff past the end",
       [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phoff = kImageSize; }); }},
      {"phoff overflows",
       [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phoff = UINT64_MAX - 8; }); }},
      {"phnum past the end", [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phnum = 0xffff; }); }},
      {"phdrs straddle the end",
       [](Bytes& f) { editEhdr64(f, [](auto& e) { e.e_phoff = kImageSize - 100; }); }},
      {"p_offset+p_filesz past the end",
       [](Bytes& f) { editPhdr64(f, 1, [](auto& p) { p.p_filesz = kDataFileSize + 1; }); }},
      {"p_offset past the end",
       [](Bytes& f) { editPhdr64(f, 0, [](auto& p) { p.p_offset = kImageSize + 0x1000; }); }},
      {"p_offset+p_filesz overflows",
       [](Bytes& f) { editPhdr64(f, 0, [](auto& p) { p.p_offset = UINT64_MAX - 0x10; }); }},
      {"p_filesz > p_memsz",
       [](Bytes& f) { editPhdr64(f, 0, [](auto& p) { p.p_memsz = kTextSize - 1; }); }},
      {"p_paddr+p_memsz overflows",
       [](Bytes& f) {
         editPhdr64(f, 1, [](auto& p) { p.p_paddr = UINT64_MAX - kDataMemSize + 2; });
       }},
      {"no PT_LOAD",
       [](Bytes& f) {
         editPhdr64(f, 0, [](auto& p) { p.p_type = PT_NULL; });
         editPhdr64(f, 1, [](auto& p) { p.p_type = PT_GNU_STACK; });
       }},
      {"only empty PT_LOADs",
       [](Bytes& f) {
         editPhdr64(f, 0, [](auto& p) { p.p_filesz = p.p_memsz = 0; });
         editPhdr64(f, 1, [](auto& p) { p.p_filesz = p.p_memsz = 0; });
       }},
      {"note segment past the end",
       [](Bytes& f) { editPhdr64(f, 2, [](auto& p) { p.p_filesz = kImageSize; }); }},
      {"note segment offset overflows",
       [](Bytes& f) { editPhdr64(f, 2, [](auto& p) { p.p_offset = UINT64_MAX - 4; }); }},
      {"note namesz past the segment",
       [](Bytes& f) { putAt<uint32_t>(f, kPvhNoteHeader, 0x1000); }},
      {"note namesz 0xffffffff", [](Bytes& f) { putAt<uint32_t>(f, kPvhNoteHeader, 0xffffffff); }},
      {"note descsz past the segment",
       [](Bytes& f) { putAt<uint32_t>(f, kPvhNoteHeader + 4, 0x100); }},
      {"note descsz 0xffffffff",
       [](Bytes& f) { putAt<uint32_t>(f, kPvhNoteHeader + 4, 0xffffffff); }},
      {"first note runs past the segment",
       [](Bytes& f) { putAt<uint32_t>(f, kNoteOffset + 4, 0x7fffffff); }},
  };
  for (const auto& c : corruptions) {
    SCOPED_TRACE(c.name);
    auto file = elf64(pvhNote(le32(kPvhEntry)));
    ASSERT_TRUE(parseElf(file).ok());
    c.apply(file);
    auto image = parseElf(file);
    ASSERT_FALSE(image.ok());
    EXPECT_EQ(image.error().code, Errc::Format);
    EXPECT_FALSE(image.error().message.empty());
  }
}

TEST(ElfLoader, RefusesMalformedPvhNoteValues) {
  auto three = parseElf(elf64(pvhNote(Bytes{0x10, 0x00, 0x20})));
  ASSERT_FALSE(three.ok());
  EXPECT_EQ(three.error().code, Errc::Format);
  EXPECT_NE(three.error().message.find("3-byte"), std::string::npos) << three.error().message;

  auto high = parseElf(elf64(pvhNote(le64(0x100000000ULL))));
  ASSERT_FALSE(high.ok());
  EXPECT_EQ(high.error().code, Errc::Format);
  EXPECT_NE(high.error().message.find("4 GiB"), std::string::npos) << high.error().message;

  auto high32 = parseElf(elf32(pvhNote(le64(0xffffffffffff0000ULL))));
  EXPECT_FALSE(high32.ok());
}

TEST(ElfLoader, ZeroSizedLoadSegmentIsSkipped) {
  auto file = elf64();
  // Turn the data segment into an empty one far outside any plausible RAM.
  editPhdr64(file, 1, [](auto& p) {
    p.p_filesz = p.p_memsz = 0;
    p.p_paddr = 0xffff000000000000ULL;
  });
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;
  ASSERT_EQ(image->segments.size(), 1u);
  EXPECT_EQ(image->highest, kTextAddr + kTextSize);
}

GuestMemory makeMemory(uint64_t size) {
  GuestRegionSpec spec[] = {{GuestAddress(0), size}};
  auto mem = GuestMemory::create(spec);
  EXPECT_TRUE(mem.ok());
  return std::move(mem).value();
}

TEST(ElfLoader, LoadCopiesSegmentsAndZeroFillsBss) {
  auto file = elf64(pvhNote(le32(kPvhEntry)));
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;
  auto mem = makeMemory(4 << 20);
  ASSERT_TRUE(mem.fill(GuestAddress(0), 0xaa, 4 << 20).ok());

  ASSERT_TRUE(loadElf(*image, file, mem, 1 << 20).ok());

  Bytes text(kTextSize);
  ASSERT_TRUE(mem.read(GuestAddress(kTextAddr), text).ok());
  EXPECT_TRUE(std::equal(text.begin(), text.end(), file.begin() + kTextOffset));
  Bytes data(kDataMemSize);
  ASSERT_TRUE(mem.read(GuestAddress(kDataAddr), data).ok());
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + kDataFileSize, file.begin() + kDataOffset));
  for (uint64_t i = kDataFileSize; i < kDataMemSize; ++i) {
    ASSERT_EQ(data[i], 0) << "bss byte " << i;
  }
  // Bytes around the segments are untouched.
  EXPECT_EQ(*mem.readObj<uint8_t>(GuestAddress(kTextAddr - 1)), 0xaa);
  EXPECT_EQ(*mem.readObj<uint8_t>(GuestAddress(kTextAddr + kTextSize)), 0xaa);
  EXPECT_EQ(*mem.readObj<uint8_t>(GuestAddress(kDataAddr + kDataMemSize)), 0xaa);
}

TEST(ElfLoader, LoadRefusesSegmentsOutsideRamOrBelowTheMinimum) {
  auto file = elf64();
  auto image = parseElf(file);
  ASSERT_TRUE(image.ok()) << image.error().message;

  auto small = makeMemory(2 << 20);  // the text segment starts at 2 MiB: no RAM there
  auto r = loadElf(*image, file, small, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::OutOfRange);

  // RAM ends one page into the data segment's .bss.
  auto tight = makeMemory(kDataAddr + 0x1000);
  r = loadElf(*image, file, tight, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::OutOfRange);

  auto exact = makeMemory(kDataAddr + kDataMemSize);
  EXPECT_TRUE(loadElf(*image, file, exact, 1 << 20).ok());

  auto big = makeMemory(4 << 20);
  r = loadElf(*image, file, big, kTextAddr + 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::OutOfRange);
  EXPECT_TRUE(loadElf(*image, file, big, kTextAddr).ok());
}

using ember::vmm::testing::TempDir;

TEST(ElfLoader, ReadImageFileReadsWholeFilesUpToTheLimit) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto bytes = elf64(pvhNote(le32(kPvhEntry)));
  auto path = dir.write("kernel.elf", bytes);

  auto exact = readImageFile(path, bytes.size(), "kernel");
  ASSERT_TRUE(exact.ok()) << exact.error().message;
  EXPECT_EQ(*exact, bytes);

  auto too_big = readImageFile(path, bytes.size() - 1, "kernel");
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, Errc::OutOfRange);
  EXPECT_NE(too_big.error().message.find("kernel"), std::string::npos);

  auto empty = readImageFile(dir.write("empty", Bytes{}), 100, "initrd");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->empty());
}

TEST(ElfLoader, ReadImageFileRefusesDirectoriesAndMissingFiles) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto d = readImageFile(dir.path(), 1 << 20, "kernel");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::InvalidArgument);

  auto missing = readImageFile(dir.path() + "/no-such-file", 1 << 20, "initrd");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  EXPECT_NE(missing.error().message.find("initrd"), std::string::npos);
  EXPECT_NE(missing.error().message.find("no-such-file"), std::string::npos);
}

// `--kernel` naming a FIFO (or a terminal) must give an error, not block in open() waiting for a
// writer that never comes.
TEST(ElfLoader, ReadImageFileDoesNotBlockOnAFifo) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto path = dir.fifo("kernel.fifo");
  auto pending =
      std::async(std::launch::async, [&] { return readImageFile(path, 1 << 20, "kernel"); });
  bool blocked = pending.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready;
  if (blocked) {
    // Release the reader: opening the write side completes its open(); closing gives it EOF.
    int w = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (w >= 0) {
      ::close(w);
    }
  }
  auto r = pending.get();
  EXPECT_FALSE(r.ok());
  if (blocked) {
  }
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
}

}  // namespace
}  // namespace ember::vmm
