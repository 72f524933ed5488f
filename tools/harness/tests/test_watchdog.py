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
        w = watchdog.Watch(watchdog.rules("l1", "ember"))
        for t in range(0, 300, 5):
            self.assertIsNone(w.update(t, {"l1": fixtures.text("l1-passed.txt"), "l2": ""}))


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
