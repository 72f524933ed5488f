// ModuleLoader: finit_module(2)'s flags by file name, and the error for a missing file.
// (Loading a real module needs the guest's kernel; the lead's boot tests do it.)
#include <gtest/gtest.h>
#include <linux/module.h>

#include "vmm/init/ModuleLoader.h"

namespace ember::init {
namespace {

TEST(ModuleLoader, CompressedModulesAskTheKernelToDecompress) {
  EXPECT_EQ(moduleInitFlags("/lib/modules/virtiofs.ko"), 0u);
  EXPECT_EQ(moduleInitFlags("/lib/modules/virtiofs.ko.xz"), unsigned{MODULE_INIT_COMPRESSED_FILE});
  EXPECT_EQ(moduleInitFlags("/lib/modules/virtiofs.ko.zst"), unsigned{MODULE_INIT_COMPRESSED_FILE});
  EXPECT_EQ(moduleInitFlags("/lib/modules/virtiofs.ko.gz"), unsigned{MODULE_INIT_COMPRESSED_FILE});
  EXPECT_EQ(moduleInitFlags("/lib/modules/xz.ko"), 0u);
}

TEST(ModuleLoader, AMissingModuleFileIsAnErrorNamingIt) {
  InitResult<void> loaded = loadModule("/nonexistent/virtio_console.ko.zst");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message,
            "loading module: opening /nonexistent/virtio_console.ko.zst: No such file or "
            "directory");
}

}  // namespace
}  // namespace ember::init
