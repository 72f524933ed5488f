// ExecJob: the exact wire bytes, round trips, and every way decode() refuses a job.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vmm/init/ExecJob.h"

namespace ember::init {
namespace {

using ::testing::HasSubstr;
using namespace std::string_literals;

using Record = std::vector<std::string>;  // key, then its values

// Wire bytes written by hand, independently of encode().
std::string wire(const std::vector<Record>& records) {
  std::string out;
  for (const Record& record : records) {
    for (const std::string& token : record) {
      out += token;
      out.push_back('\0');
    }
  }
  return out;
}

// The records every job needs, in the order encode() writes them.
std::vector<Record> required() {
  return {{"version", "1"},       {"root", "root", "ro"},   {"cwd", "/home/u"},
          {"uid", "1000"},        {"gid", "100"},           {"stdout_port", "out"},
          {"stderr_port", "err"}, {"status_port", "status"}};
}

ExecJob fullJob() {
  ExecJob job;
  job.modules = {"/lib/modules/virtio_console.ko", "/lib/modules/fuse.ko.zst",
                 "/lib/modules/virtiofs.ko.xz", "/lib/modules/overlay.ko.gz"};
  job.root_tag = "root";
  job.root_access = Access::ReadOnly;
  job.shares = {{"share0", "/home/u/src", Access::ReadWrite},
                {"share1", "/data", Access::ReadOnly}};
  job.cwd = "/home/u/src";
  job.env = {"PATH=/usr/bin:/bin", "HOME=/home/u", "EMPTY=", "EQ=a=b"};
  job.argv = {"make", "-j2", "", "with space", "caf\xc3\xa9"};
  job.uid = 1000;
  job.gid = 4294967294u;
  job.stdout_port = "ember.stdout";
  job.stderr_port = "ember.stderr";
  job.status_port = "ember.status";
  job.verbose = true;
  return job;
}

std::string decodeError(const std::string& bytes) {
  std::string error;
  std::optional<ExecJob> job = ExecJob::decode(bytes, &error);
  EXPECT_FALSE(job.has_value()) << "decoded a job that should be refused";
  EXPECT_FALSE(error.empty());
  return error;
}

// The required records with record `index` (0-based) replaced.
std::string requiredWith(size_t index, Record replacement) {
  std::vector<Record> records = required();
  records[index] = std::move(replacement);
  return wire(records);
}

TEST(ExecJob, EncodesTheExactWireFormat) {
  ExecJob job;
  job.modules = {"/m/a.ko"};
  job.root_tag = "root";
  job.root_access = Access::ReadWrite;
  job.shares = {{"s", "/mnt", Access::ReadOnly}};
  job.cwd = "/";
  job.env = {"A=1"};
  job.argv = {"true"};
  job.uid = 0;
  job.gid = 7;
  job.stdout_port = "o";
  job.stderr_port = "e";
  job.status_port = "s";
  std::string expected =
      "version\0001\0module\0/m/a.ko\0root\0root\0rw\0share\0s\0/mnt\0ro\0cwd\0/\0env\0A=1\0"
      "arg\0true\0uid\0000\0gid\0007\0stdout_port\0o\0stderr_port\0e\0status_port\0s\0"
      "verbose\0000\0"s;
  EXPECT_EQ(job.encode(), expected);
}

TEST(ExecJob, RoundTripsAFullJob) {
  ExecJob job = fullJob();
  std::string error;
  std::optional<ExecJob> back = ExecJob::decode(job.encode(), &error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_EQ(*back, job);
  EXPECT_EQ(job.validate(), std::nullopt);
}

TEST(ExecJob, RoundTripsAMinimalJobWithoutArgumentsAsAShell) {
  std::optional<ExecJob> job = ExecJob::decode(wire(required()), nullptr);
  ASSERT_TRUE(job.has_value());
  EXPECT_TRUE(job->argv.empty());
  EXPECT_TRUE(job->modules.empty());
  EXPECT_FALSE(job->verbose);
  EXPECT_EQ(job->root_access, Access::ReadOnly);
  EXPECT_EQ(job->uid, 1000u);
  EXPECT_EQ(job->gid, 100u);
  EXPECT_EQ(job->status_port, "status");
  std::optional<ExecJob> again = ExecJob::decode(job->encode(), nullptr);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *job);
}

TEST(ExecJob, AcceptsRecordsInAnyOrderAfterVersionAndKeepsRepeatedOnesInOrder) {
  std::string bytes = wire({{"version", "1"},
                            {"arg", "first"},
                            {"status_port", "st"},
                            {"env", "B=2"},
                            {"module", "/b.ko"},
                            {"gid", "0"},
                            {"arg", "second"},
                            {"cwd", "/"},
                            {"module", "/a.ko"},
                            {"uid", "0"},
                            {"env", "A=1"},
                            {"stderr_port", "er"},
                            {"root", "r", "rw"},
                            {"stdout_port", "ou"},
                            {"verbose", "1"}});
  std::optional<ExecJob> job = ExecJob::decode(bytes, nullptr);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->argv, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(job->modules, (std::vector<std::string>{"/b.ko", "/a.ko"}));
  EXPECT_EQ(job->env, (std::vector<std::string>{"B=2", "A=1"}));
  EXPECT_EQ(job->root_access, Access::ReadWrite);
  EXPECT_TRUE(job->verbose);
}

TEST(ExecJob, RefusesAnEmptyJob) {
  EXPECT_EQ(decodeError(""), "missing required record version");
}

TEST(ExecJob, RefusesEachMissingRequiredRecord) {
  const std::vector<Record> all = required();
  for (size_t skip = 1; skip < all.size(); ++skip) {
    std::vector<Record> records;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i != skip) {
        records.push_back(all[i]);
      }
    }
    EXPECT_EQ(decodeError(wire(records)), "missing required record " + all[skip][0]);
  }
}

TEST(ExecJob, RefusesAFirstRecordOtherThanVersion) {
  std::vector<Record> records = required();
  std::swap(records[0], records[1]);
  EXPECT_EQ(decodeError(wire(records)), "record 1 (root): the first record must be version");
}

TEST(ExecJob, RefusesARepeatedVersionAndAnUnsupportedOne) {
  std::vector<Record> records = required();
  records.push_back({"version", "1"});
  EXPECT_EQ(decodeError(wire(records)),
            "record 9 (version): version must be the first record only");
  EXPECT_EQ(decodeError(requiredWith(0, {"version", "2"})),
            "record 1 (version): unsupported version \"2\" (this init reads version 1)");
}

TEST(ExecJob, RefusesAnUnknownKeyShowingItsBytes) {
  std::vector<Record> records = required();
  records.insert(records.begin() + 2, Record{"bogus\x01", "x"});
  EXPECT_EQ(decodeError(wire(records)), "record 3: unknown key \"bogus\\x01\"");
}

TEST(ExecJob, RefusesMissingValues) {
  std::string bytes = wire(required()) + wire({{"share", "tag", "/mnt"}});
  EXPECT_EQ(decodeError(bytes), "record 9 (share): expects 3 values, has 2");
  EXPECT_EQ(decodeError(wire(required()) + wire({{"arg"}})),
            "record 9 (arg): expects 1 value, has 0");
}

TEST(ExecJob, RefusesAMissingTrailingNul) {
  std::string bytes = wire(required());
  bytes.pop_back();
  EXPECT_EQ(decodeError(bytes), "record 8 (status_port): value \"status\" has no terminating NUL");
  EXPECT_EQ(decodeError(wire(required()) + "arg"), "record 9: key \"arg\" has no terminating NUL");
}

TEST(ExecJob, RefusesEveryTruncationThatDoesNotEndOnANul) {
  std::string bytes = fullJob().encode();
  for (size_t size = 1; size < bytes.size(); ++size) {
    if (bytes[size - 1] != '\0') {
      EXPECT_FALSE(ExecJob::decode(bytes.substr(0, size), nullptr).has_value()) << size;
    }
  }
}

TEST(ExecJob, RefusesDuplicateSingletons) {
  for (const char* key :
       {"root", "cwd", "uid", "gid", "stdout_port", "stderr_port", "status_port", "verbose"}) {
    std::vector<Record> records = required();
    records.push_back({"verbose", "0"});  // so that verbose, too, is given twice below
    size_t first = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i][0] == key) {
        first = i;
      }
    }
    records.push_back(records[first]);
    EXPECT_EQ(decodeError(wire(records)), "record 10 (" + std::string(key) +
                                              "): duplicate (already given by record " +
                                              std::to_string(first + 1) + ")");
  }
}

TEST(ExecJob, RefusesBadIds) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "01", "abc", "0x10", "4294967295",
                          "18446744073709551616", "99999999999999999999999"}) {
    EXPECT_EQ(
        decodeError(requiredWith(3, {"uid", bad})),
        "record 4 (uid): \"" + std::string(bad) + "\" is not a decimal id from 0 to 4294967294")
        << bad;
  }
  EXPECT_THAT(decodeError(requiredWith(4, {"gid", "1.5"})), HasSubstr("record 5 (gid): \"1.5\""));
  std::optional<ExecJob> largest = ExecJob::decode(requiredWith(3, {"uid", "4294967294"}), nullptr);
  ASSERT_TRUE(largest.has_value());
  EXPECT_EQ(largest->uid, 4294967294u);
}

TEST(ExecJob, RefusesRelativePaths) {
  EXPECT_EQ(decodeError(requiredWith(2, {"cwd", "home/u"})),
            "record 3 (cwd): working directory \"home/u\" is not absolute");
  EXPECT_EQ(decodeError(requiredWith(2, {"cwd", ""})),
            "record 3 (cwd): working directory \"\" is not absolute");
  EXPECT_EQ(decodeError(wire(required()) + wire({{"share", "t", "mnt", "ro"}})),
            "record 9 (share): guest path \"mnt\" is not absolute");
  EXPECT_EQ(decodeError(wire(required()) + wire({{"module", "virtio.ko"}})),
            "record 9 (module): module path \"virtio.ko\" is not absolute");
}

TEST(ExecJob, RefusesAModuleThatIsNotAModuleFile) {
  for (const char* bad : {"/m/a.o", "/m/a.ko.bz2", "/m/ko", "/m/a.kozst"}) {
    EXPECT_EQ(decodeError(wire(required()) + wire({{"module", bad}})),
              "record 9 (module): module \"" + std::string(bad) +
                  "\" is not a .ko, .ko.xz, .ko.zst or .ko.gz file");
  }
}

TEST(ExecJob, RefusesAShareOnTheRoot) {
  EXPECT_THAT(decodeError(wire(required()) + wire({{"share", "t", "/", "rw"}})),
              HasSubstr("record 9 (share): a share cannot be mounted on /"));
}

TEST(ExecJob, RefusesAnAccessOtherThanRoOrRw) {
  EXPECT_EQ(decodeError(requiredWith(1, {"root", "root", "RO"})),
            "record 2 (root): access \"RO\" is neither ro nor rw");
  EXPECT_EQ(decodeError(wire(required()) + wire({{"share", "t", "/m", ""}})),
            "record 9 (share): access \"\" is neither ro nor rw");
}

TEST(ExecJob, RefusesTagsThatDoNotFitVirtioFsConfig) {
  std::string longest(36, 't');
  EXPECT_TRUE(ExecJob::decode(requiredWith(1, {"root", longest, "ro"}), nullptr).has_value());
  EXPECT_EQ(decodeError(requiredWith(1, {"root", longest + "t", "ro"})),
            "record 2 (root): virtio-fs tag \"" + longest + "t\" must have 1 to 36 bytes");
  EXPECT_THAT(decodeError(wire(required()) + wire({{"share", "", "/m", "ro"}})),
              HasSubstr("record 9 (share): virtio-fs tag \"\" must have"));
}

TEST(ExecJob, RefusesPortNamesThatAreNotFileNames) {
  for (const char* bad : {"", ".", "..", "a/b", "/abs"}) {
    EXPECT_EQ(decodeError(requiredWith(7, {"status_port", bad})),
              "record 8 (status_port): port name \"" + std::string(bad) + "\" is not a file name");
  }
  EXPECT_THAT(decodeError(requiredWith(5, {"stdout_port", ""})),
              HasSubstr("record 6 (stdout_port)"));
  EXPECT_THAT(decodeError(requiredWith(6, {"stderr_port", "x/"})),
              HasSubstr("record 7 (stderr_port)"));
}

TEST(ExecJob, RefusesEnvironmentEntriesWithoutAName) {
  for (const char* bad : {"", "NOVALUE", "=value"}) {
    EXPECT_EQ(decodeError(wire(required()) + wire({{"env", bad}})),
              "record 9 (env): environment entry \"" + std::string(bad) + "\" is not NAME=VALUE");
  }
}

TEST(ExecJob, RefusesAVerboseOtherThanZeroOrOne) {
  EXPECT_EQ(decodeError(wire(required()) + wire({{"verbose", "yes"}})),
            "record 9 (verbose): verbose \"yes\" is neither 0 nor 1");
}

TEST(ExecJob, ValidateRefusesNulBytesAndWhatDecodeRefuses) {
  ExecJob job = fullJob();
  job.argv.push_back(std::string("a\0b", 3));
  EXPECT_EQ(job.validate(), "value \"a\\x00b\" contains a NUL byte");
  job = fullJob();
  job.shares[1].guest_path = "data";
  EXPECT_EQ(job.validate(), "record 8 (share): guest path \"data\" is not absolute");
  job = fullJob();
  job.status_port.clear();
  EXPECT_EQ(job.validate(), "record 23 (status_port): port name \"\" is not a file name");
}

}  // namespace
}  // namespace ember::init
