"""tools/linux-boot and tests/boot/retry-nested-flake as a caller sees them, without a boot."""
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import output
from harness.shell import ROOT

LINUX_BOOT = ROOT / "tools/linux-boot"


def run(*argv):
    return subprocess.run([str(LINUX_BOOT), *argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


class EntryTest(unittest.TestCase):
    def test_help_is_the_header_comment(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, output.header_comment(LINUX_BOOT))
        self.assertIn("tools/linux-boot [--l1|--direct|--auto]", r.stdout)
        self.assertIn("Exits 0 only if ember exited 0 and every check passed", r.stdout)

    def test_usage_errors_exit_2_with_one_error_line(self):
        for argv in (["--timeout", "x"], ["--monitor", "qemu"], ["--direct", "--net-balloon"]):
            with self.subTest(argv=argv):
                r = run(*argv)
                self.assertEqual(r.returncode, 2)
                errors = [line for line in r.stderr.splitlines() if "error:" in line]
                self.assertEqual(len(errors), 1, r.stderr)
                self.assertIn("see tools/linux-boot --help", r.stderr)

    def test_a_missing_ember_exits_1(self):
        r = run("--ember", "/nonexistent/ember")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error: no ember binary at /nonexistent/ember", r.stderr)

    def test_a_bad_exec_progress_file_exits_1_at_once(self):
        # Read before ember, the packages and the kernel are looked at: no ember needed here.
        with tempfile.TemporaryDirectory() as d:
            bad = Path(d) / "progress.json"
            bad.write_text("{")
            r = run("--exec-suite", "--exec-resume", str(bad), "--ember", "/nonexistent/ember")
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"error: --exec-resume {bad}: not JSON: ", r.stderr)
        self.assertNotIn("no ember binary", r.stderr)


if __name__ == "__main__":
    unittest.main()
