// AML encodings checked byte for byte against values worked out from ACPI 6.5 section 20 (and
// section 6.4 for resource descriptors): PkgLength at every width boundary, names, integers,
// strings, buffers, packages, named objects, EISA ids and descriptors, and error propagation.
#include <gtest/gtest.h>

#include "vmm/Aml.h"

namespace ember::vmm::aml {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytesOf(const Term& t) {
  auto r = t.take();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Bytes{};
}

Bytes pkg(uint64_t payload) {
  auto r = encodePkgLength(payload);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : Bytes{};
}

TEST(Aml, PkgLengthOneByteUpTo63) {
  // One byte: bits 5-0 hold the total length (payload + the PkgLength byte itself).
  EXPECT_EQ(pkg(0), (Bytes{0x01}));
  EXPECT_EQ(pkg(10), (Bytes{0x0b}));
  EXPECT_EQ(pkg(62), (Bytes{0x3f}));  // total 63: the largest one-byte length
}

TEST(Aml, PkgLengthTwoBytesFrom64To4095) {
  // payload 63 would total 64 in one byte (too big); in two bytes it totals 65 = 0x041:
  // lead byte 01 00 0001 (one more byte, low nibble 1), then 0x04.
  EXPECT_EQ(pkg(63), (Bytes{0x41, 0x04}));
  EXPECT_EQ(pkg(62 + 1 + 1), (Bytes{0x42, 0x04}));  // total 66
  EXPECT_EQ(pkg(4093), (Bytes{0x4f, 0xff}));        // total 4095 = 0xfff: the largest
}

TEST(Aml, PkgLengthThreeBytesFrom4096) {
  // payload 4094 totals 4097 = 0x1001 in three bytes: lead 10 00 0001, then 0x00, 0x01.
  EXPECT_EQ(pkg(4094), (Bytes{0x81, 0x00, 0x01}));
  EXPECT_EQ(pkg(4095), (Bytes{0x82, 0x00, 0x01}));
  EXPECT_EQ(pkg(0xffffc), (Bytes{0x8f, 0xff, 0xff}));  // total 0xfffff: the largest
}

TEST(Aml, PkgLengthFourBytesUpTo2To28) {
  // payload 0xffffd totals 0x100001 in four bytes: lead 11 00 0001, then 0x00 0x00 0x01.
  EXPECT_EQ(pkg(0xffffd), (Bytes{0xc1, 0x00, 0x00, 0x01}));
  EXPECT_EQ(pkg(0xffffffb), (Bytes{0xcf, 0xff, 0xff, 0xff}));  // total 2^28 - 1
  auto r = encodePkgLength(0xffffffc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::OutOfRange);
}

TEST(Aml, BufferCrossesThePkgLengthWidthAt63And64Bytes) {
  // Buffer body = BufferSize (BytePrefix n: 2 bytes) + n bytes.
  Bytes b60(60, 0xaa);
  Bytes enc = bytesOf(buffer(b60));  // body 62: total 63, one-byte PkgLength
  ASSERT_EQ(enc.size(), 1u + 1 + 62);
  EXPECT_EQ(enc[0], 0x11);
  EXPECT_EQ(enc[1], 0x3f);
  EXPECT_EQ(enc[2], 0x0a);
  EXPECT_EQ(enc[3], 60);
  Bytes b61(61, 0xaa);
  enc = bytesOf(buffer(b61));  // body 63: total 65 with a two-byte PkgLength
  ASSERT_EQ(enc.size(), 1u + 2 + 63);
  EXPECT_EQ(enc[1], 0x41);
  EXPECT_EQ(enc[2], 0x04);
  EXPECT_EQ(enc[3], 0x0a);
  EXPECT_EQ(enc[4], 61);
}

TEST(Aml, BufferCrossesThePkgLengthWidthAt4095And4096Bytes) {
  // Body = WordPrefix n (3 bytes) + n bytes. n = 4090: body 4093, total 4095 (two bytes).
  Bytes enc = bytesOf(buffer(Bytes(4090, 1)));
  EXPECT_EQ(enc[1], 0x4f);
  EXPECT_EQ(enc[2], 0xff);
  EXPECT_EQ(enc[3], 0x0b);
  EXPECT_EQ(enc[4], 0xfa);  // 4090 = 0x0ffa
  EXPECT_EQ(enc[5], 0x0f);
  EXPECT_EQ(enc.size(), 1u + 2 + 4093);
  // n = 4091: body 4094 totals 4096 in two bytes (too big), so 4097 = 0x1001 in three.
  enc = bytesOf(buffer(Bytes(4091, 1)));
  EXPECT_EQ(enc[1], 0x81);
  EXPECT_EQ(enc[2], 0x00);
  EXPECT_EQ(enc[3], 0x01);
  EXPECT_EQ(enc.size(), 1u + 3 + 4094);
}

TEST(Aml, NameSegsArePaddedAndPathsPrefixed) {
  EXPECT_EQ(bytesOf(nameString("_SB")), (Bytes{'_', 'S', 'B', '_'}));
  EXPECT_EQ(bytesOf(nameString("PCI0")), (Bytes{'P', 'C', 'I', '0'}));
  EXPECT_EQ(bytesOf(nameString("\\_S5")), (Bytes{0x5c, '_', 'S', '5', '_'}));
  // DualNamePrefix 0x2e for two segments.
  EXPECT_EQ(bytesOf(nameString("\\_SB.PCI0")),
            (Bytes{0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
  // MultiNamePrefix 0x2f, SegCount, for three or more.
  EXPECT_EQ(bytesOf(nameString("A.B.C")),
            (Bytes{0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
  // ParentPrefixChar 0x5e, once per level.
  EXPECT_EQ(bytesOf(nameString("^^FOO")), (Bytes{0x5e, 0x5e, 'F', 'O', 'O', '_'}));
  // NullName.
  EXPECT_EQ(bytesOf(nameString("")), (Bytes{0x00}));
  EXPECT_EQ(bytesOf(nameString("\\")), (Bytes{0x5c, 0x00}));
}

TEST(Aml, RefusesMalformedNames) {
  for (const char* bad : {"1ABC", "ABCDE", "abc", "A..B", "A.", ".A", "A-B", "\\^A", "^\\A"}) {
    Term t = nameString(bad);
    EXPECT_FALSE(t.ok()) << bad;
    ASSERT_FALSE(t.take().ok());
    EXPECT_EQ(t.take().error().code, Errc::InvalidArgument);
  }
}

TEST(Aml, IntegersUseTheShortestEncoding) {
  EXPECT_EQ(bytesOf(integer(0)), (Bytes{0x00}));  // ZeroOp
  EXPECT_EQ(bytesOf(integer(1)), (Bytes{0x01}));  // OneOp
  EXPECT_EQ(bytesOf(integer(2)), (Bytes{0x0a, 0x02}));
  EXPECT_EQ(bytesOf(integer(0xff)), (Bytes{0x0a, 0xff}));
  EXPECT_EQ(bytesOf(integer(0x100)), (Bytes{0x0b, 0x00, 0x01}));
  EXPECT_EQ(bytesOf(integer(0xffff)), (Bytes{0x0b, 0xff, 0xff}));
  EXPECT_EQ(bytesOf(integer(0x10000)), (Bytes{0x0c, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(bytesOf(integer(0xffffffff)), (Bytes{0x0c, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(bytesOf(integer(0x100000000)),
            (Bytes{0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}));
  EXPECT_EQ(bytesOf(integer(UINT64_MAX)),
            (Bytes{0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

TEST(Aml, FixedWidthIntegers) {
  EXPECT_EQ(bytesOf(byteConst(0)), (Bytes{0x0a, 0x00}));
  EXPECT_EQ(bytesOf(wordConst(1)), (Bytes{0x0b, 0x01, 0x00}));
  EXPECT_EQ(bytesOf(dwordConst(0x12345678)), (Bytes{0x0c, 0x78, 0x56, 0x34, 0x12}));
  EXPECT_EQ(bytesOf(qwordConst(2)), (Bytes{0x0e, 2, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(bytesOf(zero()), (Bytes{0x00}));
  EXPECT_EQ(bytesOf(one()), (Bytes{0x01}));
}

TEST(Aml, Strings) {
  EXPECT_EQ(bytesOf(string("ABC")), (Bytes{0x0d, 'A', 'B', 'C', 0x00}));
  EXPECT_EQ(bytesOf(string("")), (Bytes{0x0d, 0x00}));
  EXPECT_FALSE(string("caf\xc3\xa9").ok());
  EXPECT_FALSE(string(std::string_view("a\0b", 3)).ok());
}

TEST(Aml, BuffersAndPackages) {
  // BufferOp PkgLength(6) BytePrefix 3, then the three bytes.
  EXPECT_EQ(bytesOf(buffer(Bytes{1, 2, 3})), (Bytes{0x11, 0x06, 0x0a, 0x03, 1, 2, 3}));
  EXPECT_EQ(bytesOf(buffer(Bytes{})), (Bytes{0x11, 0x02, 0x00}));
  // PackageOp PkgLength(4) NumElements(2) OneOp ZeroOp.
  EXPECT_EQ(bytesOf(package({one(), zero()})), (Bytes{0x12, 0x04, 0x02, 0x01, 0x00}));
  EXPECT_EQ(bytesOf(package({})), (Bytes{0x12, 0x02, 0x00}));
  // Nested: the outer length covers the inner package.
  EXPECT_EQ(bytesOf(package({package({one()})})),
            (Bytes{0x12, 0x06, 0x01, 0x12, 0x03, 0x01, 0x01}));
  std::vector<Term> many(256, zero());
  EXPECT_FALSE(package(many).ok());
  many.pop_back();
  Bytes enc = bytesOf(package(many));
  EXPECT_EQ(enc[0], 0x12);
  EXPECT_EQ(enc[1], 0x42);  // 1 + 255 = 256 bytes of body: total 258 = 0x102
  EXPECT_EQ(enc[2], 0x10);
  EXPECT_EQ(enc[3], 255);
}

TEST(Aml, NamedObjects) {
  // Name(_S5, Package(){5, 0, 0, 0}): NameOp '_S5_' PackageOp PkgLength(7) 4 BytePrefix 5 ...
  EXPECT_EQ(bytesOf(name("_S5", package({integer(5), zero(), zero(), zero()}))),
            (Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00}));
  // Method(_STA, 0, NotSerialized) { Return(0x0f) }: MethodOp PkgLength(9) '_STA' flags 0
  // ReturnOp BytePrefix 0x0f.
  EXPECT_EQ(bytesOf(method("_STA", 0, false, {returnValue(integer(0x0f))})),
            (Bytes{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f}));
  // Method flags: ArgCount in bits 2-0, SerializeFlag in bit 3.
  Bytes m = bytesOf(method("FOO", 3, true, {}));
  EXPECT_EQ(m, (Bytes{0x14, 0x06, 'F', 'O', 'O', '_', 0x0b}));
  EXPECT_FALSE(method("FOO", 8, false, {}).ok());
  // Device(COM1) {}: ExtOpPrefix DeviceOp PkgLength(5) 'COM1'.
  EXPECT_EQ(bytesOf(device("COM1", {})), (Bytes{0x5b, 0x82, 0x05, 'C', 'O', 'M', '1'}));
  // Scope(\_SB) { Name(X, 1) }.
  EXPECT_EQ(bytesOf(scope("\\_SB", {name("X", one())})),
            (Bytes{0x10, 0x0c, 0x5c, '_', 'S', 'B', '_', 0x08, 'X', '_', '_', '_', 0x01}));
}

TEST(Aml, EisaIds) {
  // "PNP" packs to 0x41 0xd0; the product id digits follow as two bytes.
  EXPECT_EQ(bytesOf(eisaId("PNP0A03")), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
  EXPECT_EQ(bytesOf(eisaId("PNP0A08")), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x08}));
  EXPECT_EQ(bytesOf(eisaId("PNP0501")), (Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_EQ(bytesOf(eisaId("PNP0C02")), (Bytes{0x0c, 0x41, 0xd0, 0x0c, 0x02}));
  // "ABC": A=1, B=2, C=3 -> 00001 00010 00011 -> 0 00001 00 | 010 00011 = 0x04 0x43.
  EXPECT_EQ(bytesOf(eisaId("ABC1234")), (Bytes{0x0c, 0x04, 0x43, 0x12, 0x34}));
  for (const char* bad : {"pnp0a03", "PNP0A0", "PNP0A0G", "PN10A03", "PNP0A033"}) {
    EXPECT_FALSE(eisaId(bad).ok()) << bad;
  }
}

TEST(Aml, AddressSpaceDescriptors) {
  // Word, bus number range 0-0: tag 0x88, length 13, type 2, flags MIF|MAF, no type flags,
  // then _GRA _MIN _MAX _TRA _LEN.
  EXPECT_EQ(bytesOf(res::wordBusNumber(0, 0)),
            (Bytes{0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00}));
  // Word, I/O range 0xc000-0xffff, entire range (_RNG 3).
  EXPECT_EQ(
      bytesOf(res::wordIo(0xc000, 0xffff)),
      (Bytes{0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0xc0, 0xff, 0xff, 0, 0, 0x00, 0x40}));
  // DWord memory, non-cacheable read-write (type flags 0x01), a consumer (general flag bit 0).
  EXPECT_EQ(bytesOf(res::dwordMemory(0xc0000000, 0xdfffffff, false, res::Consumer::Consumer)),
            (Bytes{0x87, 0x17, 0x00, 0x00, 0x0d, 0x01, 0, 0, 0, 0,    0x00, 0x00, 0x00,
                   0xc0, 0xff, 0xff, 0xff, 0xdf, 0,    0, 0, 0, 0x00, 0x00, 0x00, 0x20}));
  // QWord memory, cacheable read-write (type flags 0x03).
  Bytes q = bytesOf(res::qwordMemory(0x100000000, 0x1ffffffff, true));
  ASSERT_EQ(q.size(), 46u);
  EXPECT_EQ((Bytes(q.begin(), q.begin() + 6)), (Bytes{0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x03}));
  EXPECT_EQ((Bytes(q.begin() + 14, q.begin() + 22)), (Bytes{0, 0, 0, 0, 1, 0, 0, 0}));  // _MIN
  EXPECT_EQ((Bytes(q.begin() + 22, q.begin() + 30)),
            (Bytes{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}));                               // _MAX
  EXPECT_EQ((Bytes(q.begin() + 38, q.begin() + 46)), (Bytes{0, 0, 0, 0, 1, 0, 0, 0}));  // _LEN
  EXPECT_FALSE(res::wordIo(2, 1).ok());
}

TEST(Aml, SmallAndFixedDescriptors) {
  // I/O port, 16-bit decode: tag 0x47, info 1, _MIN, _MAX, _ALN, _LEN.
  EXPECT_EQ(bytesOf(res::io(0x3f8, 0x3f8, 0, 8)),
            (Bytes{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08}));
  // IRQ descriptor without flags: tag 0x22, mask bit 4.
  EXPECT_EQ(bytesOf(res::irqNoFlags(4)), (Bytes{0x22, 0x10, 0x00}));
  EXPECT_EQ(bytesOf(res::irqNoFlags(15)), (Bytes{0x22, 0x00, 0x80}));
  EXPECT_FALSE(res::irqNoFlags(16).ok());
  // Extended interrupt: tag 0x89, length 6, flags, count 1, GSI.
  EXPECT_EQ(bytesOf(res::interrupt(20, true, true, true)),
            (Bytes{0x89, 0x06, 0x00, 0x0d, 0x01, 20, 0, 0, 0}));  // consumer|low|shared, level
  EXPECT_EQ(bytesOf(res::interrupt(5, false, false, false)),
            (Bytes{0x89, 0x06, 0x00, 0x03, 0x01, 5, 0, 0, 0}));  // consumer, edge
  // 32-bit fixed memory: tag 0x86, length 9, writeable bit, base, length.
  EXPECT_EQ(bytesOf(res::memory32Fixed(0xe0000000, 0x10000000, true)),
            (Bytes{0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0xe0, 0, 0, 0, 0x10}));
}

TEST(Aml, ResourceTemplateIsABufferEndingWithAnEndTag) {
  EXPECT_EQ(bytesOf(resourceTemplate({})), (Bytes{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}));
  EXPECT_EQ(bytesOf(resourceTemplate({res::irqNoFlags(4)})),
            (Bytes{0x11, 0x08, 0x0a, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00}));
}

TEST(Aml, ErrorsTravelUpToTheOutermostTerm) {
  Term t = scope("\\_SB", {device("DEV0", {name("_HID", eisaId("bad"))})});
  EXPECT_FALSE(t.ok());
  auto r = t.take();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("EISA"), std::string::npos);
  Term u = package({one(), resourceTemplate({res::io(5, 4, 1, 1)})});
  EXPECT_FALSE(u.ok());
}

}  // namespace
}  // namespace ember::vmm::aml
