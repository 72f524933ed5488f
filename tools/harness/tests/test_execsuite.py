import re
import tempfile
import unittest
from pathlib import Path

from harness import execsuite, flake, options, plan
from harness.output import Fail
from harness.proc import Stop
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


# Two attempts of a resumed suite: the first L1 froze after five checks (its report cut off),
# the second skipped those and ran the rest.
FROZEN = """ember exec suite: Linux 6.1.0-x, ember 0.1.0, / on tmpfs
PASS out-err
host: exec-true-wall-s=8.83
host: exec-true-walls-s=8.71,8.83,9.06
PASS exec-true
FLAKE status-3: attempt 1 of 3: stalled: ember exec reached its --timeout of 90 s
PASS status-3
PASS cwd-env-ids
host: virtiofs-read-mbps=12.8
host: virtiofs-read-s=5.25
PASS virtiofs-read
"""
RESUMED = """ember exec suite: Linux 6.1.0-x, ember 0.1.0, / on tmpfs
SKIP out-err: passed in an earlier attempt
SKIP exec-true: passed in an earlier attempt
SKIP status-3: passed in an earlier attempt
SKIP cwd-env-ids: passed in an earlier attempt
SKIP virtiofs-read: passed in an earlier attempt
PASS share-ro
host: panic-wall-s=15.77
PASS panic
host: exec-suite-s=40.10
host: exec-flakes=0
host: exec-skipped=5
7 passed, 0 failed
"""


class ResumeTest(unittest.TestCase):
    def first(self) -> execsuite.Progress:
        return execsuite.after(execsuite.Progress(), execsuite.parse(FROZEN))

    def test_each_pass_has_its_cases_values(self):
        r = execsuite.parse(FROZEN)
        self.assertEqual(r.case_values, {
            "exec-true": {"exec-true-wall-s": "8.83", "exec-true-walls-s": "8.71,8.83,9.06"},
            "virtiofs-read": {"virtiofs-read-mbps": "12.8", "virtiofs-read-s": "5.25"}})
        # The suite's own values, after the last check, belong to none.
        r = execsuite.parse(PASSED)
        self.assertNotIn("exec-suite-s", {k for v in r.case_values.values() for k in v})
        self.assertEqual(r.case_values["many-files"], {"many-files-bytes": "4685263",
                                                       "many-files-wall-s": "23.14"})
        self.assertNotIn("share-ro", r.case_values)

    def test_the_progress_after_an_attempt(self):
        p = self.first()
        self.assertEqual(p.attempts, 1)
        self.assertEqual(list(p.passed), ["out-err", "exec-true", "status-3", "cwd-env-ids",
                                          "virtiofs-read"])
        self.assertEqual(p.passed["exec-true"], execsuite.Passed(1, {
            "exec-true-wall-s": "8.83", "exec-true-walls-s": "8.71,8.83,9.06"}))
        # The second attempt adds its passes and keeps the carried ones, also those it skipped
        # or did not reach; an attempt that passed nothing still counts.
        p2 = execsuite.after(p, execsuite.parse(RESUMED))
        self.assertEqual(p2.attempts, 2)
        self.assertEqual(p2.passed["exec-true"].attempt, 1)
        self.assertEqual(p2.passed["panic"], execsuite.Passed(2, {"panic-wall-s": "15.77"}))
        self.assertEqual(len(p2.passed), 7)
        self.assertEqual(execsuite.after(p2, execsuite.parse("")).attempts, 3)
        # A check that fails when run again is no longer carried.
        p3 = execsuite.after(p2, execsuite.parse("ember exec suite: x\nFAIL panic: took 99 s\n"))
        self.assertNotIn("panic", p3.passed)

    def test_the_merged_report(self):
        r, problems = execsuite.merge(execsuite.parse(RESUMED), self.first())
        self.assertEqual(problems, [])
        self.assertEqual(r.results[:2], [("out-err", None), ("exec-true", None)])
        self.assertEqual([n for n, _ in r.results], ["out-err", "exec-true", "status-3",
                                                     "cwd-env-ids", "virtiofs-read", "share-ro",
                                                     "panic"])
        self.assertEqual(r.failed, [])
        self.assertEqual(r.skipped, [])
        self.assertEqual(r.earlier, {n: 1 for n in ("out-err", "exec-true", "status-3",
                                                    "cwd-env-ids", "virtiofs-read")})
        self.assertTrue(r.consistent())
        self.assertIn("PASS exec-true (attempt 1)\n", r.text)
        self.assertIn("host: exec-true-wall-s=8.83\nhost: exec-true-walls-s=8.71,8.83,9.06\n"
                      "PASS exec-true (attempt 1)", r.text)
        self.assertIn("PASS share-ro\n", r.text)
        self.assertNotIn("SKIP", r.text)
        self.assertEqual(r.values["virtiofs-read-mbps"], "12.8")
        self.assertEqual(r.values["exec-suite-s"], "40.10")
        self.assertEqual(r.flakes, [])  # the first attempt's flake was reported by that attempt
        # The verdict: l1-exec's summary counts the SKIP lines as passed.
        self.assertEqual(flake.classify(flake.Boot("l1", execsuite.MONITOR, 0, None, "", 0,
                                                   r.summary)).status, flake.PASSED)

    def test_a_merge_without_skips_is_the_report(self):
        r, problems = execsuite.merge(execsuite.parse(PASSED), execsuite.Progress())
        self.assertEqual((r.text, problems), (execsuite.parse(PASSED).text, []))

    def test_a_skip_no_attempt_passed(self):
        r, problems = execsuite.merge(execsuite.parse(RESUMED), execsuite.Progress(1))
        self.assertEqual(len(problems), 5)
        self.assertEqual(problems[0], "l1-exec skipped out-err, which no earlier attempt passed")
        self.assertEqual(r.skipped[0], "out-err")

    def test_skips_in_the_summarys_count(self):
        r = execsuite.parse(RESUMED)
        self.assertEqual((r.skipped[:1], len(r.results)), (["out-err"], 2))
        self.assertTrue(r.consistent())
        self.assertFalse(execsuite.parse(RESUMED.replace("7 passed", "2 passed")).consistent())

    def test_the_measurements_of_a_merged_report(self):
        r, _ = execsuite.merge(execsuite.parse(RESUMED), self.first())
        line = execsuite.measurements(r)
        self.assertIn("8.83 s of wall time (median of 8.71,8.83,9.06, in attempt 1)", line)
        self.assertIn("the command starting at ? s of the guest's uptime;", line)  # never measured
        self.assertIn("at 12.8 MB/s, in attempt 1;", line)
        self.assertTrue(line.endswith("the suite ran 40.10 s in the L1 of the last attempt; 5 checks "
                                      "passed in earlier ones (5 in attempt 1)"), line)
        self.assertNotIn("attempt", execsuite.measurements(execsuite.parse(PASSED)))

    def test_a_flake_after_a_failure_is_a_failure(self):
        stall = flake.classify(flake.Boot("l1", execsuite.MONITOR, None,
                                          Stop("l1-frozen", "the L1 froze"), "", None, ""))
        self.assertEqual(stall.status, flake.STALLED)
        cut = execsuite.parse("ember exec suite: x\nPASS a\nFAIL b: exit status 1, want 0\n")
        v = execsuite.verdict(stall, cut)
        self.assertEqual((v.kind, v.status), ("failed", flake.FAILED))
        self.assertEqual(v.problems[:len(stall.problems)], stall.problems)
        self.assertEqual(v.problems[-1], "b had failed before that: a failed check is final (the "
                         "suite is not tried again)")
        # Without a failure the flake stays one; a verdict that is no flake is left alone.
        self.assertIs(execsuite.verdict(stall, execsuite.parse(FROZEN)), stall)
        passed = flake.Verdict("passed", flake.PASSED, ())
        self.assertIs(execsuite.verdict(passed, execsuite.parse(PASSED)), passed)


class ProgressFileTest(unittest.TestCase):
    def test_round_trip(self):
        p = execsuite.after(execsuite.Progress(), execsuite.parse(FROZEN))
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "progress.json"
            self.assertEqual(execsuite.load_progress(path), execsuite.Progress())  # none yet
            execsuite.save_progress(path, p)
            self.assertEqual(execsuite.load_progress(path), p)
            self.assertEqual(sorted(f.name for f in Path(d).iterdir()), ["progress.json"])

    def test_what_is_no_progress(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "progress.json"
            for text, why in [
                ("{", "not JSON"),
                ("[]", "not an exec suite's progress"),
                ('{"attempts": -1, "passed": {}}', "not an exec suite's progress"),
                ('{"attempts": 1, "passed": {"a b": {"attempt": 1, "values": {}}}}',
                 "'a b' is not a check's name"),
                ('{"attempts": 1, "passed": {"a": {"attempt": 2, "values": {}}}}',
                 "check a: want"),
                ('{"attempts": 1, "passed": {"a": {"attempt": 1}}}', "check a: want"),
                ('{"attempts": 1, "passed": {"a": {"attempt": 1, "values": {"k": "1\\n2"}}}}',
                 "is not a host: value"),
                ('{"attempts": 1, "passed": {"a": {"attempt": 1, "values": {"k": 1}}}}',
                 "is not a host: value")]:
                with self.subTest(text=text):
                    path.write_text(text)
                    with self.assertRaisesRegex(execsuite.ProgressError, re.escape(why)):
                        execsuite.load_progress(path)

    def test_the_arguments_of_a_resumed_suite(self):
        p = execsuite.after(execsuite.Progress(), execsuite.parse(FROZEN))
        self.assertEqual(execsuite.args("6.1.0-x", False, p), [
            "--skip", "out-err", "--skip", "exec-true", "--skip", "status-3",
            "--skip", "cwd-env-ids", "--skip", "virtiofs-read",
            "--value", "exec-true-wall-s=8.83", "--value", "exec-true-walls-s=8.71,8.83,9.06",
            "--value", "virtiofs-read-mbps=12.8", "--value", "virtiofs-read-s=5.25",
            "/ember/bzImage", "6.1.0-x"])
        self.assertEqual(execsuite.args("6.1.0-x", True, execsuite.Progress(2)),
                         ["--verbose", "/ember/bzImage", "6.1.0-x"])
        with tempfile.TemporaryDirectory() as d:
            work = Path(d) / "work"
            work.mkdir()
            k = tree(Path(d), fixtures.text("modules.dep"), fixtures.text("modules.builtin"))
            files = dict((dest, src) for src, dest in execsuite.files(work, k, False, p))
            self.assertEqual(Path(files["/ember/args"]).read_text().splitlines()[:2],
                             ["--skip", "out-err"])


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

    def test_exec_resume(self):
        self.assertEqual(options.parse(["--exec-suite", "--exec-resume", "/p.json"], {}).exec_resume,
                         "/p.json")
        self.assertEqual(options.parse(["--exec-suite", "--exec-resume=/q"], {}).exec_resume, "/q")
        self.assertEqual(options.parse(["--exec-suite"], {}).exec_resume, "")
        with self.assertRaisesRegex(options.UsageError, "--exec-resume resumes the ember exec suite"):
            options.parse(["--l1", "--exec-resume", "/p.json"], {})
        with self.assertRaisesRegex(options.UsageError, "--exec-resume needs a file"):
            options.parse(["--exec-suite", "--exec-resume"], {})


if __name__ == "__main__":
    unittest.main()
