import unittest

from bench import checks
from harness import record
from harness.tests import fixtures

KICK_BLK_IRQ = ("bench-kick", "bench-blk", "bench-irq")


def rec(name, change=None):
    obj = fixtures.record(name)
    if change:
        change(obj)
    return record.parse(obj, name)


class EmberRunTest(unittest.TestCase):
    def test_modern_with_ioeventfd(self):
        self.assertEqual(checks.ember_run(rec("record-debug-exit.json"), "modern", True,
                                          KICK_BLK_IRQ), [])

    def test_legacy_without_ioeventfd(self):
        self.assertEqual(checks.ember_run(rec("record-ioeventfd-off.json"), "legacy", False,
                                          ("bench-kick", "bench-blk")), [])

    def test_the_row_claims_another_face_or_setting(self):
        problems = checks.ember_run(rec("record-debug-exit.json"), "legacy", False,
                                    ("bench-kick",))
        self.assertEqual(len(problems), 3, problems)
        self.assertIn("blk0 (virtio-blk d.img) ran on the modern face, not legacy", problems[0])
        self.assertIn("had ioeventfd on, not off", problems[1])
        self.assertIn("257 kicks through ioeventfds and 0 as userspace exits; all of them should "
                      "come as userspace exits", problems[2])

    def test_one_kick_the_other_way_is_enough(self):
        def one(o):
            o["devices"][0]["kicks"]["userspace"] = 1
        self.assertIn("should come through ioeventfds", checks.ember_run(
            rec("record-debug-exit.json", one), "modern", True, ("bench-blk",))[0])

    def test_the_rng_only_when_its_row_ran(self):
        # record-ioeventfd-off.json: the rng was never activated (no bench-irq there).
        r = rec("record-ioeventfd-off.json")
        self.assertIn("rng0 (virtio-rng) ran on the no (never activated) face",
                      checks.ember_run(r, "legacy", False, ("bench-kick", "bench-irq"))[0])

    def test_the_exit(self):
        def status(o):
            o["exit"]["debug_exit_value"] = 3
            o["exit"]["status"] = 3
        self.assertIn("ember's run ended with debug-exit: guest wrote 0 to the debug-exit port, "
                      "status 3, not the guest's debug-exit 0",
                      checks.ember_run(rec("record-debug-exit.json", status), "modern", True, ()))
        self.assertIn("ended with power-off", checks.ember_run(
            rec("record-linux-poweroff.json"), "modern", True, ())[0])

    def test_a_missing_disk(self):
        self.assertEqual(checks.ember_run(rec("record-startup-error.json"), "modern", True,
                                          ("bench-blk",))[1], "ember's run record has no blk0")


if __name__ == "__main__":
    unittest.main()


class SwitchedRunTest(unittest.TestCase):
    def both(self, o):
        o["devices"][0]["kicks"]["userspace"] = 40

    def test_kicks_both_ways(self):
        self.assertEqual(checks.switched_run(rec("record-debug-exit.json", self.both), "modern"),
                         [])

    def test_one_way_only_or_another_face(self):
        problems = checks.switched_run(rec("record-debug-exit.json"), "legacy")
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("ran on the modern face, not legacy", problems[0])
        self.assertIn("257 kicks through ioeventfds and 0 as userspace exits; the switch should "
                      "give both", problems[1])
