import contextlib
import io
import os
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from harness import execsuite, retry


class AttemptsTest(unittest.TestCase):
    def attempts(self, statuses):
        runs, flakes_seen = [], []

        def run(attempt):
            runs.append(attempt)
            return statuses[attempt - 1]
        status, flakes = retry.attempts(run, lambda a, s: flakes_seen.append((a, s)))
        return status, flakes, runs, flakes_seen

    def test_a_pass_at_once(self):
        self.assertEqual(self.attempts([0]), (0, [], [1], []))

    def test_a_failure_is_final(self):
        self.assertEqual(self.attempts([1, 0])[:3], (1, [], [1]))
        self.assertEqual(self.attempts([2])[0], 2)

    def test_flakes_are_retried_and_reported(self):
        status, flakes, runs, seen = self.attempts([3, 4, 0])
        self.assertEqual((status, runs, seen), (0, [1, 2, 3], [(1, 3), (2, 4)]))
        self.assertEqual(flakes, ["attempt 1: the boot stalled before the guest finished its report",
                                  "attempt 2: the nested guest or the L1 kernel crashed"])

    def test_a_flake_on_the_last_attempt_is_final(self):
        status, flakes, runs, _ = self.attempts([4, 4, 4])
        self.assertEqual((status, runs, len(flakes)), (4, [1, 2, 3], 2))


class LogsTest(unittest.TestCase):
    def test_cache_of(self):
        self.assertEqual(retry.cache_of(["--cache", "/c", "--l1"]), "/c")
        self.assertEqual(retry.cache_of(["--cache=/d"]), "/d")
        self.assertIsNone(retry.cache_of(["--l1"]))

    def test_keeps_only_this_attempts_logs(self):
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as m:
            logs = Path(d)
            old = logs / "linux-boot-l1-legacy.l1-console.log"
            old.write_text("another variant's, from before")
            past = time.time() - 60
            os.utime(old, (past, past))
            marker = Path(m) / "marker"
            marker.touch()
            os.utime(marker, (past + 30, past + 30))
            (logs / "linux-boot-l1.l1-console.log").write_text("this run's")
            (logs / "linux-boot-l1.ember-report.json").write_text("{}")
            (logs / "linux-boot-l1.l1-console.log.flake-1").write_text("an earlier flake's")
            retry.keep_logs(logs, marker, 2)
            kept = sorted(p.name for p in logs.iterdir() if p.name.endswith(".flake-2"))
            self.assertEqual(kept, ["linux-boot-l1.ember-report.json.flake-2",
                                    "linux-boot-l1.l1-console.log.flake-2"])
            self.assertEqual((logs / "linux-boot-l1.l1-console.log.flake-2").read_text(), "this run's")


# A fake tools/linux-boot: its Nth call appends its arguments to calls.txt, writes two passed
# checks to the --exec-resume file on the first call (as an L1 that froze after them would
# have), and exits with the Nth of the statuses in statuses.txt.
FAKE_LINUX_BOOT = """#!/bin/sh
dir="$(dirname "$0")/.."
touch "$dir/calls.txt"
n=$(($(wc -l <"$dir/calls.txt") + 1))
echo "$*" >>"$dir/calls.txt"
resume=""
while [ $# -gt 0 ]; do
  [ "$1" = --exec-resume ] && resume="$2"
  shift
done
if [ "$n" = 1 ] && [ -n "$resume" ]; then
  echo '{"attempts": 1, "passed": {"uname": {"attempt": 1, "values": {}}, "out-err": {"attempt": 1, "values": {}}}}' >"$resume"
fi
exit "$(sed -n "${n}p" "$dir/statuses.txt")"
"""


class ResumeTest(unittest.TestCase):
    def test_with_resume(self):
        p = Path("/state/exec-progress.json")
        self.assertEqual(retry.with_resume(["--exec-suite", "--cache", "/c"], p),
                         ["--exec-suite", "--cache", "/c", "--exec-resume", str(p)])
        self.assertEqual(retry.with_resume(["--l1", "--net-balloon"], p), ["--l1", "--net-balloon"])
        for own in (["--exec-resume", "/mine"], ["--exec-resume=/mine"]):
            self.assertEqual(retry.with_resume(["--exec-suite", *own], p), ["--exec-suite", *own])

    def test_resumed_note(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "p.json"
            self.assertEqual(retry.resumed_note(path), "")  # the attempt wrote none
            execsuite.save_progress(path, execsuite.Progress(1, {"a": execsuite.Passed(1)}))
            self.assertEqual(retry.resumed_note(path), "; the 1 checks passed so far are not run again")
            path.write_text("{")
            self.assertEqual(retry.resumed_note(path), "")

    def run_main(self, argv: list[str], statuses: list[int]) -> tuple[int, list[str], str]:
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "tools").mkdir()
            fake = root / "tools/linux-boot"
            fake.write_text(FAKE_LINUX_BOOT)
            fake.chmod(0o755)
            (root / "statuses.txt").write_text("".join(f"{s}\n" for s in statuses))
            err = io.StringIO()
            with mock.patch.object(retry, "ROOT", root), contextlib.redirect_stderr(err):
                status = retry.main(argv)
            return status, (root / "calls.txt").read_text().splitlines(), err.getvalue()

    def test_an_exec_suite_is_resumed_on_its_retries(self):
        status, calls, err = self.run_main(["--exec-suite", "--timeout", "480"], [3, 0])
        self.assertEqual(status, 0)
        self.assertEqual(len(calls), 2)
        # Every attempt gets the same progress file of this series.
        self.assertRegex(calls[0], r"^--exec-suite --timeout 480 --exec-resume /\S+/exec-progress.json$")
        self.assertEqual(calls[0], calls[1])
        self.assertIn("retry-nested-flake: the boot stalled before the guest finished its report "
                      "(linux-boot exit 3, attempt 1 of 3); retrying; the 2 checks passed so far "
                      "are not run again", err)
        self.assertIn("retry-nested-flake: passed on attempt 2 after 1 flake(s)", err)
        # The series' file goes with it.
        self.assertFalse(Path(calls[0].split()[-1]).exists())

    def test_a_boot_is_retried_as_it_was(self):
        status, calls, err = self.run_main(["--l1", "--net-balloon"], [4, 1])
        self.assertEqual((status, calls), (1, ["--l1 --net-balloon"] * 2))
        self.assertIn("(linux-boot exit 4, attempt 1 of 3); retrying\n", err)


if __name__ == "__main__":
    unittest.main()
