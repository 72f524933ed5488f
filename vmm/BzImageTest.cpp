// bzImage parsing against synthetic images (valid, truncated at every length, old protocol,
// missing magic, not 64-bit) and loading (kernel placement, zero page, command line, initrd,
// e820). Offsets in the checks are literal values from boot.rst and zero-page.rst, independent
// of the structs in BzImage.h.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "vmm/BzImage.h"

namespace ember::vmm {
namespace {

using namespace layout;

constexpr uint64_t kPref = 0x1000000;  // 16 MiB, as x86_64 kernels are built
constexpr uint32_t kInitSize = 0x800000;

struct ImageSpec {
  uint8_t setup_sects = 3;
  uint16_t version = 0x020f;
  uint8_t loadflags = 0x01;
  uint16_t xloadflags = 0x01;
  uint8_t relocatable = 1;
  uint32_t kernel_alignment = 0x200000;
  uint64_t pref_address = kPref;
  uint32_t init_size = kInitSize;
  uint32_t cmdline_size = 2047;
  uint32_t initrd_addr_max = 0x7fffffff;
  uint8_t jump_offset = 0x6a;  // header ends at 0x202 + 0x6a = 0x26c
  size_t payload = 8192;
  int64_t syssize_delta = 0;  // paragraphs added to the honest syssize
};

template <typename T>
void put(std::vector<uint8_t>& v, size_t off, T value) {
  std::memcpy(v.data() + off, &value, sizeof value);
}

template <typename T>
T get(std::span<const uint8_t> v, size_t off) {
  T value;
  std::memcpy(&value, v.data() + off, sizeof value);
  return value;
}

std::vector<uint8_t> makeImage(const ImageSpec& s) {
  size_t sects = s.setup_sects == 0 ? 4 : s.setup_sects;
  size_t setup = (sects + 1) * 512;
  std::vector<uint8_t> img(setup + s.payload);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 7 + 3);
  // A recognisable setup header (boot.rst offsets).
  std::fill(img.begin() + 0x1f1, img.begin() + 0x26c, 0);
  img[0x1f1] = s.setup_sects;
  put<uint32_t>(img, 0x1f4, static_cast<uint32_t>(s.payload / 16 + s.syssize_delta));
  put<uint16_t>(img, 0x1fa, 0xffff);
  put<uint16_t>(img, 0x1fe, 0xaa55);
  img[0x200] = 0xeb;
  img[0x201] = s.jump_offset;
  std::memcpy(img.data() + 0x202, "HdrS", 4);
  put<uint16_t>(img, 0x206, s.version);
  img[0x211] = s.loadflags;
  put<uint32_t>(img, 0x214, 0x100000);
  put<uint32_t>(img, 0x22c, s.initrd_addr_max);
  put<uint32_t>(img, 0x230, s.kernel_alignment);
  img[0x234] = s.relocatable;
  img[0x235] = 21;
  put<uint16_t>(img, 0x236, s.xloadflags);
  put<uint32_t>(img, 0x238, s.cmdline_size);
  put<uint64_t>(img, 0x258, s.pref_address);
  put<uint32_t>(img, 0x260, s.init_size);
  return img;
}

struct Guest {
  MemoryLayout layout;
  GuestMemory mem;
};

Guest makeGuest(uint64_t size) {
  auto l = MemoryLayout::forSize(size);
  EXPECT_TRUE(l.ok());
  auto m = GuestMemory::create(l->ramRegions());
  EXPECT_TRUE(m.ok());
  return Guest{std::move(*l), std::move(*m)};
}

std::vector<uint8_t> readGuest(const GuestMemory& mem, uint64_t addr, size_t len) {
  std::vector<uint8_t> out(len);
  EXPECT_TRUE(mem.read(GuestAddress(addr), out).ok());
  return out;
}

TEST(BzImage, ParsesAValidImage) {
  auto img = makeImage({});
  EXPECT_TRUE(looksLikeBzImage(img));
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->setup_size, 4u * 512);
  EXPECT_EQ(p->kernel_offset, 4u * 512);
  EXPECT_EQ(p->kernel_size, 8192u);
  EXPECT_EQ(p->header_end, 0x26cu);
  EXPECT_EQ(p->init_size, kInitSize);
  EXPECT_TRUE(p->relocatable);
  EXPECT_EQ(p->header.version, 0x020f);
  EXPECT_EQ(p->header.pref_address, kPref);
  EXPECT_EQ(p->header.kernel_alignment, 0x200000u);
  EXPECT_EQ(p->header.cmdline_size, 2047u);
  EXPECT_EQ(p->header.initrd_addr_max, 0x7fffffffu);
}

TEST(BzImage, SetupSectsZeroMeansFour) {
  ImageSpec s;
  s.setup_sects = 0;
  auto p = parseBzImage(makeImage(s));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->setup_size, 5u * 512);
}

TEST(BzImage, InitSizeIsAtLeastTheFileKernel) {
  ImageSpec s;
  s.init_size = 16;
  auto p = parseBzImage(makeImage(s));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->init_size, 8192u);
}

TEST(BzImage, EveryTruncationIsRefused) {
  ImageSpec s;
  s.payload = 1024;
  auto img = makeImage(s);
  ASSERT_TRUE(parseBzImage(img).ok());
  for (size_t len = 0; len < img.size(); ++len) {
    auto p = parseBzImage(std::span(img).first(len));
    ASSERT_FALSE(p.ok()) << "accepted a " << len << "-byte prefix";
    EXPECT_EQ(p.error().code, Errc::Format) << len;
  }
}

TEST(BzImage, SyssizeLongerThanTheFileIsTruncation) {
  ImageSpec s;
  s.syssize_delta = 1;
  auto p = parseBzImage(makeImage(s));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::Format);
  EXPECT_NE(p.error().message.find("truncated"), std::string::npos);
  s.syssize_delta = -1;  // a shorter claim (a padded or signed file) is fine
  EXPECT_TRUE(parseBzImage(makeImage(s)).ok());
}

TEST(BzImage, RefusesImagesWithoutBootFlagOrMagic) {
  auto img = makeImage({});
  auto no_magic = img;
  no_magic[0x202] = 'X';
  EXPECT_FALSE(looksLikeBzImage(no_magic));
  auto p = parseBzImage(no_magic);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::Format);
  EXPECT_NE(p.error().message.find("not a bzImage"), std::string::npos);

  auto no_flag = img;
  no_flag[0x1fe] = 0;
  EXPECT_FALSE(looksLikeBzImage(no_flag));
  EXPECT_FALSE(parseBzImage(no_flag).ok());

  std::vector<uint8_t> elf(4096, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  EXPECT_FALSE(looksLikeBzImage(elf));
  EXPECT_FALSE(parseBzImage(elf).ok());
}

TEST(BzImage, RefusesOldProtocols) {
  for (uint16_t v : {0x0200, 0x0206, 0x0209}) {
    ImageSpec s;
    s.version = v;
    auto p = parseBzImage(makeImage(s));
    ASSERT_FALSE(p.ok()) << v;
    EXPECT_EQ(p.error().code, Errc::Unsupported);
    EXPECT_NE(p.error().message.find("too old"), std::string::npos);
  }
}

TEST(BzImage, RefusesKernelsWithoutA64BitEntry) {
  ImageSpec s;
  s.xloadflags = 0x02;  // XLF_CAN_BE_LOADED_ABOVE_4G alone
  auto p = parseBzImage(makeImage(s));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::Unsupported);
  EXPECT_NE(p.error().message.find("64-bit"), std::string::npos);
  // Protocol 2.10 and 2.11 have no xloadflags: whatever is in that field does not count.
  s.version = 0x020b;
  s.xloadflags = 0x01;
  EXPECT_FALSE(parseBzImage(makeImage(s)).ok());
}

TEST(BzImage, RefusesKernelsThatDoNotLoadHigh) {
  ImageSpec s;
  s.loadflags = 0x80;
  auto p = parseBzImage(makeImage(s));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::Unsupported);
}

TEST(BzImage, RefusesHeadersThatDoNotFitTheirSetup) {
  ImageSpec s;
  s.jump_offset = 0x40;  // header ends at 0x242, before pref_address and init_size
  EXPECT_FALSE(parseBzImage(makeImage(s)).ok());
  s.jump_offset = 0x6a;
  s.setup_sects = 0;
  EXPECT_TRUE(parseBzImage(makeImage(s)).ok());
  s.relocatable = 1;
  s.kernel_alignment = 0x300000;  // not a power of two
  EXPECT_FALSE(parseBzImage(makeImage(s)).ok());
}

TEST(BzImage, LoadsAtPrefAddressAndBuildsTheZeroPage) {
  auto g = makeGuest(64 * MiB);
  auto img = makeImage({});
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  auto l = loadBzImage(*p, img, g.mem, g.layout, {"console=ttyS0 quiet", {}, 0xe0000});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->load_address, kPref);
  EXPECT_EQ(l->entry64, kPref + 0x200);
  EXPECT_EQ(l->boot_params, kBootParams);
  EXPECT_EQ(l->initrd_address, 0u);

  // The protected-mode kernel, byte for byte.
  EXPECT_EQ(readGuest(g.mem, kPref, 8192), std::vector<uint8_t>(img.begin() + 2048, img.end()));

  auto bp = readGuest(g.mem, kBootParams, 4096);
  // The setup header is the image's, except the fields the loader writes.
  for (size_t off = 0x1f1; off < 0x26c; ++off) {
    bool loader_field =
        off == 0x210 || (off >= 0x218 && off < 0x220) || (off >= 0x228 && off < 0x22c);
    if (!loader_field) {
      EXPECT_EQ(bp[off], img[off]) << std::hex << off;
    }
  }
  EXPECT_EQ(bp[0x210], 0xff);                     // type_of_loader
  EXPECT_EQ(get<uint32_t>(bp, 0x228), kCmdline);  // cmd_line_ptr
  EXPECT_EQ(get<uint32_t>(bp, 0x0c8), 0u);        // ext_cmd_line_ptr
  EXPECT_EQ(get<uint32_t>(bp, 0x218), 0u);        // ramdisk_image
  EXPECT_EQ(get<uint32_t>(bp, 0x21c), 0u);        // ramdisk_size
  EXPECT_EQ(get<uint64_t>(bp, 0x070), 0xe0000u);  // acpi_rsdp_addr
  EXPECT_EQ(bp[0x1ef], 0);                        // sentinel
  for (size_t off = 0x26c; off < 0x290; ++off) EXPECT_EQ(bp[off], 0) << off;
  // Outside the header and the fields Ember fills, the page is zero.
  for (size_t off = 0; off < 0x1e8; ++off) {
    if (off >= 0x070 && off < 0x078) continue;
    EXPECT_EQ(bp[off], 0) << std::hex << off;
  }

  auto cmd = readGuest(g.mem, kCmdline, 20);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(cmd.data())), "console=ttyS0 quiet");
}

TEST(BzImage, CopiesTheWholeHeaderTheJumpByteCovers) {
  auto g = makeGuest(64 * MiB);
  ImageSpec s;
  s.jump_offset = 0x7e;  // header ends at 0x280: 20 bytes of fields newer than Ember
  auto img = makeImage(s);
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->header_end, 0x280u);
  ASSERT_TRUE(loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0}).ok());
  auto bp = readGuest(g.mem, kBootParams, 4096);
  for (size_t off = 0x26c; off < 0x280; ++off) EXPECT_EQ(bp[off], img[off]) << off;
  for (size_t off = 0x280; off < 0x290; ++off) EXPECT_EQ(bp[off], 0) << off;
  s.jump_offset = 0xff;  // 0x301: past boot_params' room for it, which ends at 0x290
  img = makeImage(s);
  p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0}).ok());
  bp = readGuest(g.mem, kBootParams, 4096);
  EXPECT_EQ(bp[0x28f], img[0x28f]);
  for (size_t off = 0x290; off < 0x2d0; ++off) EXPECT_EQ(bp[off], 0) << off;
}

TEST(BzImage, WritesTheE820MapIntoTheZeroPage) {
  // 5 GiB: RAM below the hole and above 4 GiB. Only low memory is backed here; the loader writes
  // nothing above the kernel without an initrd.
  auto l = MemoryLayout::forSize(5 * GiB);
  ASSERT_TRUE(l.ok());
  GuestRegionSpec low[] = {{GuestAddress(0), 64 * MiB}};
  auto mem = GuestMemory::create(low);
  ASSERT_TRUE(mem.ok());
  auto img = makeImage({});
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(loadBzImage(*p, img, *mem, *l, {"", {}, 0}).ok());
  auto bp = readGuest(*mem, kBootParams, 4096);
  auto map = l->memoryMap();
  ASSERT_EQ(map.size(), 5u);
  ASSERT_EQ(bp[0x1e8], map.size());  // e820_entries
  for (size_t i = 0; i < map.size(); ++i) {
    size_t off = 0x2d0 + 20 * i;  // e820_table, 20-byte entries
    EXPECT_EQ(get<uint64_t>(bp, off), map[i].addr) << i;
    EXPECT_EQ(get<uint64_t>(bp, off + 8), map[i].size) << i;
    EXPECT_EQ(get<uint32_t>(bp, off + 16), static_cast<uint32_t>(map[i].type)) << i;
  }
  EXPECT_EQ(get<uint64_t>(bp, 0x2d0 + 20 * 4), 4 * GiB);
  EXPECT_EQ(get<uint64_t>(bp, 0x2d0 + 20 * 4 + 8), 2 * GiB);
  EXPECT_EQ(get<uint64_t>(bp, 0x2d0 + 20 * 5), 0u);  // nothing after the last entry
  EXPECT_EQ(get<uint64_t>(bp, 0x070), 0u);           // no RSDP given
}

TEST(BzImage, RsdpOnlyForProtocol214AndLater) {
  auto g = makeGuest(64 * MiB);
  ImageSpec s;
  s.version = 0x020d;
  auto img = makeImage(s);
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0xe0000}).ok());
  EXPECT_EQ(get<uint64_t>(readGuest(g.mem, kBootParams, 4096), 0x070), 0u);
}

TEST(BzImage, FallsBackToOneMiBWhenPrefAddressDoesNotApply) {
  auto g = makeGuest(64 * MiB);
  ImageSpec s;
  s.relocatable = 0;  // a non-relocatable kernel moves itself; load it at 1 MiB
  auto img = makeImage(s);
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  auto l = loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->load_address, 0x100000u);
  EXPECT_EQ(l->entry64, 0x100200u);

  s.relocatable = 1;
  s.init_size = 56 * MiB;  // fits from 1 MiB but not from 16 MiB in 64 MiB of RAM
  img = makeImage(s);
  p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  l = loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->load_address, 0x100000u);

  s.init_size = 64 * MiB;  // fits nowhere
  img = makeImage(s);
  p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  l = loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::OutOfRange);

  s.init_size = kInitSize;
  s.pref_address = 0x1000;  // below 1 MiB: never used
  img = makeImage(s);
  p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  l = loadBzImage(*p, img, g.mem, g.layout, {"", {}, 0});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->load_address, 0x100000u);
}

TEST(BzImage, RefusesCommandLinesLongerThanCmdlineSize) {
  auto g = makeGuest(64 * MiB);
  ImageSpec s;
  s.cmdline_size = 16;
  auto img = makeImage(s);
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  std::string fits(16, 'x');
  ASSERT_TRUE(loadBzImage(*p, img, g.mem, g.layout, {fits, {}, 0}).ok());
  auto cmd = readGuest(g.mem, kCmdline, 17);
  EXPECT_EQ(cmd[15], 'x');
  EXPECT_EQ(cmd[16], 0);
  std::string too_long(17, 'x');
  auto l = loadBzImage(*p, img, g.mem, g.layout, {too_long, {}, 0});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::InvalidArgument);
  EXPECT_NE(l.error().message.find("at most 16"), std::string::npos);
  // Ember's own buffer bounds a kernel that accepts more.
  s.cmdline_size = 0xffffffff;
  img = makeImage(s);
  p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  std::string huge(kCmdlineMax, 'y');
  EXPECT_FALSE(loadBzImage(*p, img, g.mem, g.layout, {huge, {}, 0}).ok());
  huge.pop_back();
  EXPECT_TRUE(loadBzImage(*p, img, g.mem, g.layout, {huge, {}, 0}).ok());
}

TEST(BzImage, PlacesTheInitrdHighBelowItsLimitAndAboveTheKernel) {
  auto g = makeGuest(64 * MiB);
  auto img = makeImage({});
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  std::vector<uint8_t> initrd(3 * 4096 + 100);
  for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<uint8_t>(i ^ 0x5a);
  auto l = loadBzImage(*p, img, g.mem, g.layout, {"", initrd, 0});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->initrd_address % 4096, 0u);
  EXPECT_EQ(l->initrd_size, initrd.size());
  EXPECT_LE(l->initrd_address + initrd.size(), 64 * MiB);
  EXPECT_GT(l->initrd_address + initrd.size() + 4096, 64 * MiB);  // as high as it goes
  EXPECT_GE(l->initrd_address, kPref + kInitSize);
  EXPECT_EQ(readGuest(g.mem, l->initrd_address, initrd.size()), initrd);
  auto bp = readGuest(g.mem, kBootParams, 4096);
  EXPECT_EQ(get<uint32_t>(bp, 0x218), l->initrd_address);  // ramdisk_image
  EXPECT_EQ(get<uint32_t>(bp, 0x21c), initrd.size());      // ramdisk_size
  EXPECT_EQ(get<uint32_t>(bp, 0x0c0), 0u);                 // ext_ramdisk_image
  EXPECT_EQ(get<uint32_t>(bp, 0x0c4), 0u);                 // ext_ramdisk_size

  // initrd_addr_max is the last byte the initrd may occupy.
  ImageSpec s;
  s.initrd_addr_max = 32 * MiB - 1;
  img = makeImage(s);
  p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  l = loadBzImage(*p, img, g.mem, g.layout, {"", initrd, 0});
  ASSERT_TRUE(l.ok());
  EXPECT_LE(l->initrd_address + initrd.size(), 32 * MiB);
  EXPECT_GT(l->initrd_address + initrd.size() + 4096, 32 * MiB);
}

TEST(BzImage, RefusesAnInitrdThatDoesNotFit) {
  auto g = makeGuest(64 * MiB);
  auto img = makeImage({});
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  // Between the kernel's end (16 MiB + 8 MiB) and the end of RAM (64 MiB): 40 MiB.
  std::vector<uint8_t> exact(40 * MiB);
  auto l = loadBzImage(*p, img, g.mem, g.layout, {"", exact, 0});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->initrd_address, kPref + kInitSize);
  std::vector<uint8_t> too_big(40 * MiB + 1);
  l = loadBzImage(*p, img, g.mem, g.layout, {"", too_big, 0});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::OutOfRange);
  EXPECT_NE(l.error().message.find("initrd"), std::string::npos);
  std::vector<uint8_t> huge(65 * MiB);
  EXPECT_FALSE(loadBzImage(*p, img, g.mem, g.layout, {"", huge, 0}).ok());
}

TEST(BzImage, AFailedLoadWritesNothing) {
  auto g = makeGuest(64 * MiB);
  ImageSpec s;
  s.cmdline_size = 4;
  auto img = makeImage(s);
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  std::vector<uint8_t> initrd(4096, 0xcc);
  EXPECT_FALSE(loadBzImage(*p, img, g.mem, g.layout, {"too long", initrd, 0}).ok());
  std::vector<uint8_t> huge(60 * MiB);
  EXPECT_FALSE(loadBzImage(*p, img, g.mem, g.layout, {"ok", huge, 0}).ok());
  EXPECT_EQ(readGuest(g.mem, kPref, 8192), std::vector<uint8_t>(8192, 0));
  EXPECT_EQ(readGuest(g.mem, kBootParams, 4096), std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(readGuest(g.mem, kCmdline, 16), std::vector<uint8_t>(16, 0));
  EXPECT_EQ(readGuest(g.mem, 64 * MiB - 4096, 4096), std::vector<uint8_t>(4096, 0));
}

TEST(BzImage, RefusesFileBytesThatDoNotMatchTheParse) {
  auto g = makeGuest(64 * MiB);
  auto img = makeImage({});
  auto p = parseBzImage(img);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(
      loadBzImage(*p, std::span(img).first(img.size() - 1), g.mem, g.layout, {"", {}, 0}).ok());
}

}  // namespace
}  // namespace ember::vmm
