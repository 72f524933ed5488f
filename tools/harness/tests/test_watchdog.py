import re
import tempfile
import unittest
from pathlib import Path

from harness import watchdog

from . import fixtures

REPORT = fixtures.text("l2-passed.txt")


class RulesTest(unittest.TestCase):
    def test_l1_fault_after_its_grace(self):
        w = watchdog.Watch(watchdog.rules("l1", "ember"))
        panic = fixtures.text("l1-panic.txt")
        self.assertIsNone(w.update(5, {"l1": "linux-boot-l1: L1 up\n", "l2": ""}))
        self.assertIsNone(w.update(20, {"l1": panic, "l2": ""}))
        self.assertIsNone(w.update(29, {"l1": panic, "l2": ""}))
        stop = w.update(30, {"l1": panic, "l2": ""})
        self.assertEqual(stop.kind, "l1-fault")
        self.assertIn("Kernel panic - not syncing: corrupted stack end", stop.message)

    def test_no_exit_after_the_report(self):
        w = watchdog.Watch(watchdog.rules("l1", "ember"))
        self.assertIsNone(w.update(10, {"l1": "", "l2": REPORT}))
        self.assertIsNone(w.update(69, {"l1": "", "l2": REPORT}))
        stop = w.update(70, {"l1": "", "l2": REPORT})
        self.assertEqual(stop.kind, "no-exit")
        self.assertIn("ember did not exit within 60 s", stop.message)

    def test_silence_only_directly(self):
        for mode, fires in (("direct", True), ("l1", False)):
            w = watchdog.Watch(watchdog.rules(mode, "ember"))
            w.update(0, {"l2": ""})
            w.update(30, {"l2": "ember boot test: Linux\n"})
            self.assertIsNone(w.update(119, {"l2": "ember boot test: Linux\n"}))
            stop = w.update(120, {"l2": "ember boot test: Linux\n"})
            self.assertEqual(stop is not None and stop.kind == "silence", fires, mode)

    def test_output_resets_the_silence(self):
        w = watchdog.Watch(watchdog.rules("direct", "ember"))
        text = ""
        for t in range(0, 600, 30):
            text += "PASS x\n"
            self.assertIsNone(w.update(t, {"l2": text}))

    def test_a_quiet_passing_run_is_never_stopped_before_its_report(self):
        # Up to the frozen L1's limit (below), a run that says nothing is left alone.
        w = watchdog.Watch(watchdog.rules("l1", "ember"))
        for t in range(0, watchdog.L1_FROZEN_S, 5):
            self.assertIsNone(w.update(t, {"l1": fixtures.text("l1-passed.txt"), "l2": ""}))

    def test_a_frozen_l1(self):
        # Both consoles stop: the L1 itself froze (its own watchdog cannot speak).
        w = watchdog.Watch(watchdog.rules("l1", "l1-exec"))
        l1, l2 = "linux-boot-l1: L1 up\n", "ember exec suite: x\nPASS a\n"
        self.assertIsNone(w.update(1, {"l1": "", "l2": ""}))
        self.assertIsNone(w.update(10, {"l1": l1, "l2": l2}))
        self.assertIsNone(w.update(249, {"l1": l1, "l2": l2}))
        stop = w.update(250, {"l1": l1, "l2": l2})
        self.assertEqual(stop.kind, "l1-frozen")
        self.assertEqual(stop.message, "the L1 froze: neither of its consoles grew for 240 s")

    def test_either_console_growing_keeps_the_l1_alive(self):
        # The boots: the guest quiet while ember logs on the L1's console; the exec suite: the L1's
        # console quiet while the suite's report grows. Neither is a frozen L1.
        for grows in ("l1", "l2"):
            w = watchdog.Watch(watchdog.rules("l1", "ember"))
            texts = {"l1": "", "l2": ""}
            for t in range(0, 1000, 100):
                texts[grows] += "a line\n"
                self.assertIsNone(w.update(t, dict(texts)), grows)

    def test_the_frozen_limit_is_a_parameter(self):
        w = watchdog.Watch(watchdog.rules("l1", "ember", l1_frozen_s=30))
        w.update(0, {"l1": "", "l2": ""})
        self.assertIsNone(w.update(29, {"l1": "", "l2": ""}))
        self.assertIn("grew for 30 s", w.update(30, {"l1": "", "l2": ""}).message)

    def test_no_frozen_l1_rule_directly(self):
        # Directly there is no L1: the guest's own 90 s silence rule applies instead.
        self.assertFalse(any(isinstance(r, watchdog.AllSilent)
                             for r in watchdog.rules("direct", "ember")))
        self.assertTrue(any(isinstance(r, watchdog.AllSilent)
                            for r in watchdog.rules("l1", "qemu", re.compile("^done$", re.M))))


class ConsoleWatchTest(unittest.TestCase):
    def test_reads_the_files(self):
        with tempfile.TemporaryDirectory() as d:
            l2 = Path(d) / "l2.log"
            watch = watchdog.ConsoleWatch({"l2": l2}, watchdog.rules("direct", "qemu"))
            self.assertIsNone(watch(1.0))  # no file yet
            l2.write_text(REPORT.replace("\n", "\r\n"))
            self.assertIsNone(watch(2.0))
            stop = watch(62.0)
            self.assertEqual(stop.kind, "no-exit")
            self.assertIn("qemu did not exit", stop.message)


if __name__ == "__main__":
    unittest.main()
