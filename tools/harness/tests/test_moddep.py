import unittest

from harness import moddep

from . import fixtures

# fixtures/modules.dep: the lines of Debian's 6.1 cloud kernel (depmod -b) for the virtio, FUSE,
# overlay and pvpanic modules; fixtures/modules.builtin: the first lines of its modules.builtin.
DEP = fixtures.text("modules.dep")
BUILTIN = fixtures.text("modules.builtin")


class ClosureTest(unittest.TestCase):
    def test_the_exec_modules_of_debians_kernel(self):
        files = moddep.closure(DEP, BUILTIN)
        self.assertEqual(sorted(files), sorted([
            "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
            "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_ring.ko",
            "kernel/drivers/virtio/virtio.ko", "kernel/drivers/char/virtio_console.ko",
            "kernel/fs/fuse/fuse.ko", "kernel/fs/fuse/virtiofs.ko", "kernel/fs/overlayfs/overlay.ko",
            "kernel/drivers/misc/pvpanic/pvpanic-pci.ko", "kernel/drivers/misc/pvpanic/pvpanic.ko"]))
        self.assertEqual(len(files), len(set(files)))
        self.assertNotIn("kernel/fs/fuse/cuse.ko", files)

    def test_dash_and_underscore_are_one(self):
        self.assertEqual(moddep.closure(DEP, BUILTIN, ("pvpanic-pci",)),
                         ["kernel/drivers/misc/pvpanic/pvpanic-pci.ko",
                          "kernel/drivers/misc/pvpanic/pvpanic.ko"])

    def test_a_dependency_is_followed_even_when_its_line_omits_the_rest(self):
        dep = "a.ko: b.ko\nb.ko: c.ko\nc.ko:\n"
        self.assertEqual(moddep.closure(dep, "", ("a",)), ["a.ko", "b.ko", "c.ko"])

    def test_built_in_needs_no_file(self):
        self.assertEqual(moddep.closure(DEP, BUILTIN + "kernel/fs/overlayfs/overlay.ko\n",
                                        ("overlay", "binfmt_script")), ["kernel/fs/overlayfs/overlay.ko"])
        self.assertEqual(moddep.closure("", "kernel/fs/fuse/fuse.ko\n", ("fuse",)), [])

    def test_missing_module_or_dependency(self):
        with self.assertRaisesRegex(moddep.ModDepError, "no module virtiofs"):
            moddep.closure("kernel/fs/fuse/fuse.ko:\n", "", ("virtiofs",))
        with self.assertRaisesRegex(moddep.ModDepError, "depends on b.ko"):
            moddep.closure("a.ko: b.ko\n", "", ("a",))
        with self.assertRaisesRegex(moddep.ModDepError, "line 2"):
            moddep.closure("a.ko:\nno colon here\n", "", ("a",))

    def test_names(self):
        self.assertEqual(moddep.name_of("kernel/drivers/char/hw_random/virtio-rng.ko"), "virtio_rng")
        self.assertEqual(moddep.name_of("kernel/fs/fuse/fuse.ko.xz"), "fuse")


if __name__ == "__main__":
    unittest.main()
