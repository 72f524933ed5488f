import tempfile
import unittest
from pathlib import Path

from harness import execsuite, flake, options, plan
from harness.output import Fail
from harness.shell import Kernel

from . import fixtures

# fixtures/exec-suite-passed.txt: the second serial port of a real run of the suite in the L1.
PASSED = fixtures.text("exec-suite-passed.txt")


class ReportTest(unittest.TestCase):
    def test_a_real_report(self):
        r = execsuite.parse("[    1.2] some kernel line\n" + PASSED + "[   99.0] reboot: Power down\n")
        self.assertTrue(r.text.startswith("ember exec suite: Linux 6.1.0-50-cloud-amd64"))
        self.assertTrue(r.text.endswith(r.summary))
        self.assertNotIn("Power down", r.text)
        self.assertRegex(r.summary, r"^[0-9]+ passed, 0 failed$")
        self.assertTrue(r.consistent())
        self.assertEqual(r.failed, [])
        self.assertEqual(r.flakes, [])
        names = [name for name, _ in r.results]
        for name in ("out-err", "uname", "share-rw", "root-overlay", "many-files", "panic",
                     "timeout", "setup-no-virtiofsd", "status-137", "virtiofs-read", "cwd-env-ids",
                     "rw-root", "share-ro", "exec-uptime"):
            self.assertIn(name, names)
        for key in ("exec-true-wall-s", "exec-boot-uptime-s", "virtiofs-read-mbps"):
            self.assertRegex(r.values[key], r"^[0-9.]+$")
        line = execsuite.measurements(r)
        self.assertIn(f"ember exec -- true: {r.values['exec-true-wall-s']} s", line)
        self.assertIn(f"at {r.values['virtiofs-read-mbps']} MB/s", line)

    def test_failures_and_flakes(self):
        r = execsuite.parse("ember exec suite: x\nPASS a\nFLAKE b: attempt 1 of 3: stalled: "
                            "ember exec reached its --timeout of 90 s\nFAIL b: exit status 124, "
                            "want 0\nFAIL c\nhost: k=v=w\n1 passed, 2 failed\nPASS after\n")
        self.assertEqual(r.results, [("a", None), ("b", "exit status 124, want 0"), ("c", "")])
        self.assertEqual(r.failed, ["b", "c"])
        self.assertEqual(r.flakes, ["b: attempt 1 of 3: stalled: ember exec reached its --timeout "
                                    "of 90 s"])
        self.assertEqual(r.values, {"k": "v=w"})
        self.assertTrue(r.consistent())
        self.assertNotIn("PASS after", r.text)

    def test_a_summary_that_does_not_count_the_lines(self):
        self.assertFalse(execsuite.parse("ember exec suite: x\nPASS a\n2 passed, 0 failed\n").consistent())
        self.assertFalse(execsuite.parse("ember exec suite: x\nPASS a\nFAIL b: y\n2 passed, 0 failed\n")
                         .consistent())

    def test_no_report_or_an_unfinished_one(self):
        self.assertEqual(execsuite.parse("PASS a\n1 passed, 0 failed\n").summary, "")
        r = execsuite.parse("ember exec suite: x\nPASS a\nPASS b\n")
        self.assertEqual((r.summary, len(r.results)), ("", 2))
        self.assertFalse(r.consistent())

    def test_the_last_report_counts(self):
        r = execsuite.parse("ember exec suite: 1\nFAIL a: x\n0 passed, 1 failed\n"
                            "ember exec suite: 2\nPASS a\n1 passed, 0 failed\n")
        self.assertEqual((r.summary, r.failed), ("1 passed, 0 failed", []))

    def test_the_verdict_of_a_failed_suite(self):
        # l1-exec exits 1 when a check failed; that is a failure, not a flake to retry.
        r = execsuite.parse("ember exec suite: x\nPASS a\nFAIL b: y\n1 passed, 1 failed\n")
        v = flake.classify(flake.Boot("l1", execsuite.MONITOR, 0, None, "", 1, r.summary))
        self.assertEqual(v.status, flake.FAILED)
        self.assertIn("l1-exec exited with status 1", v.problems[0])
        r = execsuite.parse(PASSED)
        self.assertEqual(flake.classify(flake.Boot("l1", execsuite.MONITOR, 0, None, "", 0,
                                                   r.summary)).status, flake.PASSED)


def tree(d: Path, dep: str, builtin: str = "", order: bool = True) -> Kernel:
    modules = d / "lib/modules/6.1.0-x/kernel"
    modules.mkdir(parents=True)
    (modules.parent / "modules.dep").write_text(dep)
    (modules.parent / "modules.builtin").write_text(builtin)
    if order:
        (modules.parent / "modules.order").write_text("")
    return Kernel("6.1.0-x", d / "vmlinuz", d / "vmlinux", modules)


class ImageTest(unittest.TestCase):
    def test_the_modules_directory(self):
        with tempfile.TemporaryDirectory() as d:
            k = tree(Path(d), fixtures.text("modules.dep"), fixtures.text("modules.builtin"))
            files = execsuite.module_files(k)
        dests = [dest for _, dest in files]
        self.assertEqual(dests[:3], ["/lib/modules/6.1.0-x/modules.dep",
                                     "/lib/modules/6.1.0-x/modules.builtin",
                                     "/lib/modules/6.1.0-x/modules.order"])
        self.assertIn("/lib/modules/6.1.0-x/kernel/fs/fuse/virtiofs.ko", dests)
        self.assertIn("/lib/modules/6.1.0-x/kernel/drivers/misc/pvpanic/pvpanic.ko", dests)
        self.assertEqual(len(dests), 3 + 11)
        for src, dest in files:
            self.assertTrue(src.endswith(dest), (src, dest))

    def test_without_modules_order(self):
        with tempfile.TemporaryDirectory() as d:
            k = tree(Path(d), "kernel/fs/fuse/fuse.ko:\n", "kernel/fs/fuse/virtiofs.ko\n"
                     "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\n"
                     "kernel/fs/overlayfs/overlay.ko\nkernel/drivers/misc/pvpanic/pvpanic-pci.ko\n",
                     order=False)
            self.assertEqual([dest for _, dest in execsuite.module_files(k)], [
                "/lib/modules/6.1.0-x/modules.dep", "/lib/modules/6.1.0-x/modules.builtin",
                "/lib/modules/6.1.0-x/kernel/fs/fuse/fuse.ko"])

    def test_a_kernel_without_the_modules_fails(self):
        with tempfile.TemporaryDirectory() as d:
            k = tree(Path(d), "kernel/fs/fuse/fuse.ko:\n")
            with self.assertRaisesRegex(Fail, "no module virtio_pci"):
                execsuite.module_files(k)
        with tempfile.TemporaryDirectory() as d:
            k = Kernel("6.1.0-x", Path(d), Path(d), Path(d) / "lib/modules/6.1.0-x/kernel")
            with self.assertRaisesRegex(Fail, "modules.dep"):
                execsuite.module_files(k)

    def test_the_script_and_its_arguments(self):
        self.assertEqual(execsuite.args("6.1.0-x", False), ["/ember/bzImage", "6.1.0-x"])
        self.assertEqual(execsuite.args("6.1.0-x", True), ["--verbose", "/ember/bzImage", "6.1.0-x"])
        with tempfile.TemporaryDirectory() as d:
            work = Path(d) / "work"
            work.mkdir()
            k = tree(Path(d), fixtures.text("modules.dep"), fixtures.text("modules.builtin"))
            files = dict((dest, src) for src, dest in execsuite.files(work, k, False))
            self.assertEqual(files["/ember/bzImage"], str(k.bzimage))
            self.assertEqual(files["/ember/l1-exec"], str(execsuite.SCRIPT))
            self.assertEqual(Path(files["/ember/args"]).read_text(), "/ember/bzImage\n6.1.0-x\n")
            self.assertEqual(Path(files["/ember/monitor"]).read_text(), "/ember/l1-exec\n")
            self.assertIn("/ember/exec-suite", files)
        self.assertTrue(execsuite.SCRIPT.is_file())


class OptionsTest(unittest.TestCase):
    def test_the_suite_runs_in_the_l1(self):
        o = options.parse(["--exec-suite", "--timeout", "600"], {})
        options.resolve_mode(o, hardware_virt=True)
        self.assertEqual((o.mode, o.exec_suite, o.timeout), ("l1", True, 600))
        self.assertEqual(plan.variant(o), "l1-exec-suite")
        self.assertEqual(plan.title(o), "linux-boot --l1 --exec-suite")
        o = options.parse(["--exec-suite", "--direct"], {})
        with self.assertRaisesRegex(options.UsageError, "needs --l1"):
            options.resolve_mode(o, hardware_virt=True)

    def test_no_boot_options_with_the_suite(self):
        for extra in (["--net-balloon"], ["--legacy"], ["--cpus", "2"], ["--no-devices"],
                      ["--disk", "x.img"], ["--monitor", "qemu"], ["--rng"], ["--cmdline", "a"]):
            with self.subTest(extra=extra):
                with self.assertRaisesRegex(options.UsageError, "--exec-suite"):
                    options.parse(["--exec-suite", *extra], {})
        o = options.parse(["--exec-suite", "--verbose", "--keep", "--ember", "/e", "--l1"], {})
        self.assertEqual((o.verbose, o.keep, o.ember), (True, True, "/e"))


if __name__ == "__main__":
    unittest.main()
