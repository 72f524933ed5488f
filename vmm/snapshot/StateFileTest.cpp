// StateFile and StateReader/StateWriter: a file round-trips, and a tampered one is refused with
// one line that says why: another format version, a cut at any length, any flipped bit, a
// repeated or malformed section; the reader's bounds on every field.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "kvm/LittleEndian.h"
#include "kvm/StateReader.h"
#include "kvm/StateWriter.h"
#include "vmm/snapshot/StateFile.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

StateFile sample() {
  StateFile f;
  StateWriter w;
  w.u32(2);
  w.string("ember 0.1.0");
  EXPECT_TRUE(f.add("MACH", 0, w.take()).ok());
  for (uint32_t i = 0; i < 3; ++i) {
    StateWriter v;
    v.u64(0x1000 + i);
    v.boolean(i == 1);
    EXPECT_TRUE(f.add("VCPU", i, v.take()).ok());
  }
  EXPECT_TRUE(f.add("NONE", 0, {}).ok());
  return f;
}

// BYTES with the checksum made right again, so that what is wrong is the structure.
std::vector<uint8_t> resealed(std::vector<uint8_t> bytes) {
  auto body = std::span(bytes).first(bytes.size() - StateFile::kChecksumBytes);
  storeLe<uint64_t>(std::span(bytes).last(StateFile::kChecksumBytes), StateFile::crc64(body));
  return bytes;
}

std::string refusal(std::span<const uint8_t> bytes) {
  auto r = StateFile::parse(bytes, "s.state");
  return r.ok() ? std::string("(accepted)") : r.error().message;
}

TEST(StateFile, RoundTripsThroughAFile) {
  testing::TempDir dir;
  StateFile f = sample();
  std::string path = dir.path() + "/vm.state";
  ASSERT_TRUE(f.write(path).ok());
  auto back = StateFile::read(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->sections().size(), 5u);
  EXPECT_EQ(back->count("VCPU"), 3u);
  ASSERT_NE(back->find("VCPU", 1), nullptr);
  EXPECT_EQ(*back->find("VCPU", 1), *f.find("VCPU", 1));
  EXPECT_EQ(back->find("VCPU", 3), nullptr);
  ASSERT_NE(back->find("NONE"), nullptr);
  EXPECT_TRUE(back->find("NONE")->empty());
  StateReader r(*back->find("MACH"), "MACH 0");
  EXPECT_EQ(r.u32("vcpus"), 2u);
  EXPECT_EQ(r.string("version", 64), "ember 0.1.0");
  EXPECT_TRUE(r.finish().ok());
  EXPECT_EQ(back->serialize(), f.serialize());
  EXPECT_FALSE(std::ifstream(path + ".tmp").good()) << "the temporary file was renamed";
}

TEST(StateFile, CrcIsCrc64Xz) {
  // The check value of CRC-64/XZ (the catalogue's "123456789").
  const std::string check = "123456789";
  EXPECT_EQ(StateFile::crc64(std::span(reinterpret_cast<const uint8_t*>(check.data()), 9)),
            0x995dc9bbdf1939faull);
}

TEST(StateFile, AddRefusesABadTagAndARepeatedSection) {
  StateFile f;
  EXPECT_FALSE(f.add("vcpu", 0, {}).ok());
  EXPECT_FALSE(f.add("VCPU0", 0, {}).ok());
  EXPECT_TRUE(f.add("VCPU", 0, {}).ok());
  EXPECT_FALSE(f.add("VCPU", 0, {}).ok());
}

TEST(Hostile, StateFileFromAnotherFormatVersionIsRefused) {
  auto bytes = sample().serialize();
  storeLe<uint32_t>(std::span(bytes).subspan(8, 4), 2);
  std::string why = refusal(resealed(bytes));
  EXPECT_NE(why.find("state format 2 is another ember version's"), std::string::npos) << why;
  EXPECT_NE(why.find("reads format 1"), std::string::npos) << why;
}

TEST(Hostile, StateFileCutAtAnyLengthSaysItIsTruncated) {
  auto bytes = sample().serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::string why = refusal(std::span(bytes).first(len));
    if (len < StateFile::kMagic.size()) {
      EXPECT_NE(why.find("not an ember state file"), std::string::npos) << len << ": " << why;
    } else {
      EXPECT_NE(why.find("truncated"), std::string::npos) << len << ": " << why;
    }
    EXPECT_EQ(why.find('\n'), std::string::npos);
  }
}

TEST(Hostile, StateFileWithAnyBitFlippedIsRefused) {
  auto bytes = sample().serialize();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = bytes;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(StateFile::parse(bad, "s.state").ok()) << "byte " << i << " bit " << bit;
    }
  }
  auto bad = bytes;
  bad[40] ^= 1;  // inside a section: the checksum catches it
  EXPECT_NE(refusal(bad).find("the file is corrupt"), std::string::npos) << refusal(bad);
}

TEST(Hostile, StateFileStructureIsCheckedEvenWithAGoodChecksum) {
  auto bytes = sample().serialize();
  // A section count beyond the limit, and one beyond what the file holds.
  auto many = bytes;
  storeLe<uint32_t>(std::span(many).subspan(12, 4), StateFile::kMaxSections + 1);
  EXPECT_NE(refusal(resealed(many)).find("more than the 4096 allowed"), std::string::npos);
  auto more = bytes;
  storeLe<uint32_t>(std::span(more).subspan(12, 4), 6);
  EXPECT_NE(refusal(resealed(more)).find("truncated"), std::string::npos);
  // Fewer sections than the file holds: bytes are left over.
  auto fewer = bytes;
  storeLe<uint32_t>(std::span(fewer).subspan(12, 4), 4);
  EXPECT_NE(refusal(resealed(fewer)).find("left over"), std::string::npos);
  // A tag that is not one, a length past the end, a repeated (tag, instance).
  auto tag = bytes;
  tag[16] = '!';
  EXPECT_NE(refusal(resealed(tag)).find("the tag '!ACH'"), std::string::npos) << refusal(tag);
  auto len = bytes;
  storeLe<uint64_t>(std::span(len).subspan(24, 8), ~0ull);
  EXPECT_NE(refusal(resealed(len)).find("truncated: section 0 (MACH 0)"), std::string::npos);
  StateFile two;
  ASSERT_TRUE(two.add("VCPU", 0, {1}).ok());
  ASSERT_TRUE(two.add("VCPU", 1, {2}).ok());
  auto dup = two.serialize();
  storeLe<uint32_t>(std::span(dup).subspan(16 + 16 + 1 + 4, 4), 0);  // second instance -> 0
  EXPECT_NE(refusal(resealed(dup)).find("section VCPU 0 appears twice"), std::string::npos)
      << refusal(resealed(dup));
  auto magic = bytes;
  magic[0] = 'X';
  EXPECT_NE(refusal(magic).find("not an ember state file"), std::string::npos);
}

TEST(Hostile, StateFileReadRefusesWhatIsNotARegularFile) {
  testing::TempDir dir;
  EXPECT_EQ(StateFile::read(dir.path() + "/missing").error().code, Errc::NotFound);
  EXPECT_NE(StateFile::read(dir.path()).error().message.find("not a regular file"),
            std::string::npos);
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(StateFile::read(fifo).error().message.find("not a regular file"), std::string::npos)
      << "and without waiting for a writer";
}

TEST(StateReader, EveryReadIsBoundedAndTheFirstErrorWins) {
  StateWriter w;
  w.u8(7);
  w.u16(0x1234);
  w.boolean(true);
  w.blob(std::vector<uint8_t>{1, 2, 3});
  w.u64(9);
  auto bytes = w.take();
  StateReader r(bytes, "TEST 0");
  EXPECT_EQ(r.u8("a"), 7u);
  EXPECT_EQ(r.u16("b"), 0x1234u);
  EXPECT_TRUE(r.boolean("c"));
  EXPECT_EQ(r.blob("d", 3).size(), 3u);
  EXPECT_EQ(r.u32("e"), 9u);
  EXPECT_NE(r.finish().error().message.find("4 bytes are left over"), std::string::npos);

  StateReader big(bytes, "TEST 0");
  big.raw(4, "skip");
  EXPECT_TRUE(big.ok());
  EXPECT_TRUE(big.blob("d", 2).empty());
  EXPECT_NE(big.finish().error().message.find("TEST 0: d (at byte 8) has a length of 3 bytes"),
            std::string::npos)
      << big.finish().error().message;
  EXPECT_EQ(big.u64("later"), 0u) << "reads after an error give zero";

  std::vector<uint8_t> two = {2};
  StateReader b(two, "TEST 0");
  EXPECT_FALSE(b.boolean("flag"));
  EXPECT_NE(b.finish().error().message.find("is 2, not a boolean"), std::string::npos);

  auto first_two = std::span<const uint8_t>(bytes).first(2);
  StateReader cut(first_two, "TEST 0");
  cut.u8("a");
  cut.u16("b");
  EXPECT_NE(cut.finish().error().message.find("b (at byte 1) needs 2 bytes, 1 are left"),
            std::string::npos)
      << cut.finish().error().message;

  struct Pod {
    uint32_t a, b;
  };
  StateWriter o;
  o.object(Pod{1, 2});
  o.blob(std::vector<uint8_t>(4));
  auto ob = o.take();
  StateReader orr(ob, "TEST 0");
  Pod p = orr.object<Pod>("pod");
  EXPECT_EQ(p.b, 2u);
  orr.object<Pod>("short pod");
  EXPECT_NE(orr.finish().error().message.find("is 4 bytes, not the 8"), std::string::npos);

  const std::vector<uint8_t> five = {5, 0, 0, 0};
  StateReader counted(five, "TEST 0");
  EXPECT_EQ(counted.count("entries", 4), 0u);
  EXPECT_FALSE(counted.ok());
}

}  // namespace
}  // namespace ember::vmm
