import tempfile
import unittest
from pathlib import Path

from harness import consoles, summary

from . import fixtures


class GuestReportTest(unittest.TestCase):
    def test_the_report_and_its_lines(self):
        report = consoles.guest_report(fixtures.text("l2-passed.txt"))
        self.assertTrue(report.startswith("ember boot test: Linux 6.1.0-50-cloud-amd64"))
        self.assertTrue(report.endswith("3 passed, 0 failed"))
        self.assertNotIn("Linux version", report)
        self.assertNotIn("Power down", report)
        self.assertEqual(consoles.summary(report), "3 passed, 0 failed")
        self.assertEqual(consoles.from_guest(report, "blk-scratch-sha256"),
                         "d9d68877c18e6342552afa25003377aa8bb0204f44455748f8d28a0eb021eb03")
        self.assertEqual(consoles.from_guest(report, "net-to-guest-mbps"), "")
        self.assertEqual(consoles.init_uptime(report), 12.06)

    def test_a_report_that_stopped(self):
        report = consoles.guest_report(fixtures.text("l2-stopped.txt"))
        self.assertTrue(report.endswith("PASS cpus"))
        self.assertEqual(consoles.summary(report), "")

    def test_no_report(self):
        self.assertEqual(consoles.guest_report("[ 0.0] Linux version\nPASS x\n1 passed, 0 failed"), "")

    def test_read_drops_carriage_returns(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "c.log"
            p.write_bytes(b"PASS a\r\n1 passed, 0 failed\r\n")
            self.assertEqual(consoles.read(p), "PASS a\n1 passed, 0 failed\n")
            self.assertEqual(consoles.read(Path(d) / "missing"), "")


class L1ConsoleTest(unittest.TestCase):
    def test_a_passed_run(self):
        l1 = fixtures.text("l1-passed.txt")
        self.assertEqual(consoles.ember_status(l1), 0)
        self.assertEqual(consoles.l1_disk(l1, 1), "/dev/vdb")
        self.assertIsNone(consoles.l1_disk(l1, 2))
        self.assertEqual(consoles.l1_up(l1), "8.42")
        self.assertEqual(consoles.monitor_ran(l1), "28.91")
        self.assertEqual(consoles.l1_rss(l1, "balloon-before"), 480124)
        self.assertEqual(consoles.l1_rss(l1, "balloon-after"), 455000)
        self.assertIsNone(consoles.l1_rss(l1, "other"))
        self.assertTrue(consoles.ember_report(l1).startswith('{"ember":{"version":"0.1.0"}'))
        self.assertFalse(consoles.watchdog_stalled(l1))
        self.assertIsNone(consoles.l1_fault(l1))

    def test_failures_of_the_l1(self):
        self.assertEqual(consoles.l1_fault(fixtures.text("l1-panic.txt")),
                         "Kernel panic - not syncing: corrupted stack end detected inside scheduler")
        self.assertEqual(consoles.l1_fault(fixtures.text("l1-soft-lockup.txt")),
                         "BUG: soft lockup - CPU#0 stuck for 23s! [vcpu0:141]")
        # fixtures/l1-rcu-stall.txt: the L1 of a real --io-bench --monitor qemu run.
        self.assertEqual(consoles.l1_fault(fixtures.text("l1-rcu-stall.txt")),
                         "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:")
        self.assertTrue(consoles.watchdog_stalled(fixtures.text("l1-watchdog-stall.txt")))
        reset = fixtures.text("l1-reset.txt")
        self.assertIsNone(consoles.ember_status(reset))
        self.assertIsNone(consoles.ember_report(reset))


class SummaryTest(unittest.TestCase):
    def test_written_and_read(self):
        t = summary.timing(42.04, "ember", "8.42", "28.91")
        self.assertEqual(t, "42.0 s wall, L1 ready for ember at 8.42 s of uptime, ember ran 28.91 s")
        line = f"==> linux-boot --l1 --no-devices passed ({t})"
        self.assertEqual(summary.monitor_ran(line), 28.91)
        self.assertEqual(summary.timing(3.0, "qemu", None, None), "3.0 s wall")
        self.assertIsNone(summary.monitor_ran("linux-boot --direct passed (3.0 s wall)"))


if __name__ == "__main__":
    unittest.main()
