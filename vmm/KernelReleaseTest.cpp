// kernelRelease on synthetic bzImage setup headers (offsets are literal boot.rst values): the
// release as the first word of the kernel_version string, the pointer checked against the setup
// code and the file at every truncation, refused strings, ELF and other images; and
// defaultModulesDir on a scratch modules root.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "vmm/KernelRelease.h"
#include "vmm/testing/TempDir.h"

namespace ember::vmm {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr std::string_view kDebianVersion =
    "6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian "
    "6.1.176-1 (2026-07-02)";

// A bzImage's setup code with the boot flag, "HdrS", the protocol version and kernel_version
// (pointing at `text`, written with its NUL at `at` + 0x200 unless `at` is 0), then a payload.
Bytes image(std::string_view text, uint16_t at = 0x3c0, uint8_t setup_sects = 4,
            uint16_t protocol = 0x020f) {
  size_t setup = (size_t{setup_sects == 0 ? uint8_t{4} : setup_sects} + 1) * 512;
  Bytes img(setup + 1024, 0xcc);
  img[0x1f1] = setup_sects;
  img[0x1fe] = 0x55;
  img[0x1ff] = 0xaa;
  std::memcpy(img.data() + 0x202, "HdrS", 4);
  img[0x206] = static_cast<uint8_t>(protocol);
  img[0x207] = static_cast<uint8_t>(protocol >> 8);
  img[0x20e] = static_cast<uint8_t>(at);
  img[0x20f] = static_cast<uint8_t>(at >> 8);
  size_t where = size_t{at} + 0x200;
  if (at != 0 && where + text.size() < img.size()) {
    std::memcpy(img.data() + where, text.data(), text.size());
    img[where + text.size()] = 0;
  }
  return img;
}

std::string errorOf(const Result<std::string>& r) {
  EXPECT_FALSE(r.ok()) << "accepted: " << (r.ok() ? *r : "");
  return r.ok() ? "" : r.error().message;
}

TEST(KernelRelease, IsTheFirstWordOfTheKernelVersionString) {
  auto r = kernelRelease(image(kDebianVersion));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "6.1.0-50-cloud-amd64");
  // Debian's real image: setup_sects 39, kernel_version 0x42c0.
  r = kernelRelease(image(kDebianVersion, 0x42c0, 39));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "6.1.0-50-cloud-amd64");
  r = kernelRelease(image("6.8.0-rc3+"));  // no banner after it
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "6.8.0-rc3+");
  r = kernelRelease(image("4.19.0_x~1 rest"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "4.19.0_x~1");
}

TEST(KernelRelease, TheStringMustLieInTheSetupCode) {
  // setup_sects 0 means 4: 2560 bytes of setup, so the pointer may reach 2560 - 0x200 - 1.
  std::string one = "1";
  Bytes last(image(one, 2560 - 0x200 - 2, 0));  // "1" and its NUL are the setup's last bytes
  auto r = kernelRelease(last);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "1");
  // The NUL one byte later would be in the payload: no NUL in the setup code.
  Bytes past = image("12", 2560 - 0x200 - 2, 0);
  EXPECT_NE(errorOf(kernelRelease(past)).find("no NUL"), std::string::npos);
  // Pointers at the setup's end or anywhere beyond.
  for (uint16_t at : {uint16_t{2560 - 0x200}, uint16_t{0x8000}, uint16_t{0xffff}}) {
    Bytes img = image("", 0x3c0, 0);
    img[0x20e] = static_cast<uint8_t>(at);
    img[0x20f] = static_cast<uint8_t>(at >> 8);
    EXPECT_NE(errorOf(kernelRelease(img)).find("outside"), std::string::npos) << at;
  }
}

TEST(KernelRelease, EveryTruncationIsReadWithinTheFile) {
  const Bytes full = image(kDebianVersion);
  const size_t string_end = 0x3c0 + 0x200 + kDebianVersion.size() + 1;
  for (size_t n = 0; n <= full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<long>(n));
    cut.shrink_to_fit();  // so that ASan sees a read past the end
    auto r = kernelRelease(cut);
    EXPECT_EQ(r.ok(), n >= string_end) << n;
    if (r.ok()) {
      EXPECT_EQ(*r, "6.1.0-50-cloud-amd64");
    }
  }
}

TEST(KernelRelease, RefusesStringsThatAreNotAReleaseName) {
  for (std::string_view bad : {"", " 6.1.0", "../../etc", "6.1/x", ".", "..", "6.1\t#1", "\x01"}) {
    std::string e = errorOf(kernelRelease(image(bad)));
    EXPECT_NE(e.find("--modules"), std::string::npos) << bad << ": " << e;
  }
  std::string longest(kMaxKernelRelease, '6');
  EXPECT_TRUE(kernelRelease(image(longest)).ok());
  errorOf(kernelRelease(image(longest + "6")));
}

TEST(KernelRelease, ImagesWithoutAVersionAskForModules) {
  std::string none = errorOf(kernelRelease(image("6.1.0", 0)));
  EXPECT_NE(none.find("no kernel_version"), std::string::npos) << none;
  EXPECT_NE(none.find("--modules"), std::string::npos);
  // Protocol 2.00 introduced the field.
  EXPECT_FALSE(kernelRelease(image("6.1.0", 0x3c0, 4, 0x01ff)).ok());
  EXPECT_TRUE(kernelRelease(image("2.4.0", 0x3c0, 4, 0x0200)).ok());

  Bytes elf(4096, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  elf[4] = 2;  // ELFCLASS64
  std::string e = errorOf(kernelRelease(elf));
  EXPECT_NE(e.find("ELF"), std::string::npos) << e;
  EXPECT_NE(e.find("--modules"), std::string::npos) << e;
  std::string other = errorOf(kernelRelease(Bytes(8192, 0x90)));
  EXPECT_NE(other.find("not a bzImage"), std::string::npos) << other;
  EXPECT_NE(other.find("--modules"), std::string::npos) << other;
  errorOf(kernelRelease({}));
}

TEST(KernelRelease, DefaultModulesDirIsTheReleasesDirectoryWhenItExists) {
  testing::TempDir root;
  root.mkdir("6.1.0-50-cloud-amd64/kernel");
  root.write("6.1.0-file", "not a directory");
  auto dir = defaultModulesDir("6.1.0-50-cloud-amd64", root.path());
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(*dir, root.path() + "/6.1.0-50-cloud-amd64");

  auto missing = defaultModulesDir("6.2.0", root.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  EXPECT_NE(missing.error().message.find(root.path() + "/6.2.0"), std::string::npos);
  EXPECT_NE(missing.error().message.find("--modules"), std::string::npos);
  EXPECT_FALSE(defaultModulesDir("6.1.0-file", root.path()).ok());
  // Not a release: never a path outside the root.
  auto escape = defaultModulesDir("..", root.path() + "/6.1.0-50-cloud-amd64/kernel");
  ASSERT_FALSE(escape.ok());
  EXPECT_EQ(escape.error().code, Errc::InvalidArgument);
  EXPECT_FALSE(defaultModulesDir("../6.1.0-50-cloud-amd64", root.path() + "/x").ok());
  EXPECT_FALSE(defaultModulesDir("", root.path()).ok());
}

}  // namespace
}  // namespace ember::vmm
