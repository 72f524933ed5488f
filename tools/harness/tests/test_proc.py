import tempfile
import time
import unittest
from pathlib import Path

from harness import proc


class RunTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.out, self.err = Path(self.dir.name) / "out", Path(self.dir.name) / "err"

    def run_sh(self, script, **kw):
        return proc.run(["sh", "-c", script], kw.pop("timeout", 10), self.out, self.err, **kw)

    def test_status_and_output(self):
        r = self.run_sh("echo out; echo err >&2; read x || exit 7")
        self.assertEqual((r.status, r.stop, r.timed_out), (7, None, False))  # stdin is /dev/null
        self.assertEqual((self.out.read_text(), self.err.read_text()), ("out\n", "err\n"))
        self.assertGreater(r.maxrss_kib, 0)

    def test_cpu_time_is_the_childs(self):
        # A fixed amount of work (about 0.3 s of CPU here, however loaded the machine: a loop
        # bounded by wall time got under 0.1 s of CPU while CI's fuzzers ran) against a sleep.
        busy = self.run_sh("awk 'BEGIN { for (i = 0; i < 15000000; i++) s += i }'")
        idle = self.run_sh("sleep 0.3")
        self.assertGreater(busy.cpu_s, 0.1)
        self.assertLess(idle.cpu_s, 0.1)

    def test_stderr_into_stdout(self):
        proc.run(["sh", "-c", "echo a; echo b >&2"], 10, self.out)
        self.assertEqual(sorted(self.out.read_text().split()), ["a", "b"])

    def test_a_signal_is_128_plus_n(self):
        self.assertEqual(self.run_sh("kill -TERM $$").status, 143)

    def test_timeout_ends_the_whole_group(self):
        t0 = time.monotonic()
        r = self.run_sh("sleep 30 & sleep 30; echo never", timeout=0.5)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIsNone(r.status)
        self.assertEqual(r.stop, proc.Stop("timeout", "timed out after 0.5 s"))
        self.assertEqual(self.out.read_text(), "")

    def test_sigterm_first_with_a_grace(self):
        r = self.run_sh("trap 'echo term; exit 0' TERM; sleep 30 & wait", timeout=0.5,
                        term_grace=5)
        self.assertIsNone(r.status)
        self.assertEqual(self.out.read_text(), "term\n")
        r = self.run_sh("trap '' TERM; sleep 2; sleep 30", timeout=0.3, term_grace=0.3)
        self.assertEqual(r.stop.kind, "timeout")
        self.assertLess(r.seconds, 5)

    def test_the_watch_can_stop_it(self):
        calls = []

        def watch(elapsed):
            calls.append(elapsed)
            return proc.Stop("mine", "enough") if len(calls) == 3 else None
        r = self.run_sh("sleep 30", watch=watch, poll_s=0.05)
        self.assertEqual(r.stop, proc.Stop("mine", "enough"))
        self.assertEqual(len(calls), 3)
        self.assertEqual(calls, sorted(calls))


if __name__ == "__main__":
    unittest.main()
