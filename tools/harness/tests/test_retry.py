import os
import tempfile
import time
import unittest
from pathlib import Path

from harness import retry


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


if __name__ == "__main__":
    unittest.main()
