"""snapshot: the table's rows and the restore goal from the figures, and the line of ember's log
that gives the restore's own time."""
import unittest

from bench import snapshot
from bench.stats import Results


class SnapshotRowTest(unittest.TestCase):
    def results(self, restore_in):
        r = Results()
        for size, ms in restore_in.items():
            for v in (ms, ms + 1, ms + 2):
                r.add(("restore-in", "ember", size, False, 0), v)
                r.add(("cold-boot", "ember", size, False, 0), 25.0)
                r.add(("restore", "ember", size, False, 0), 12.0)
        return r

    def med(self, r):
        def med(*key):
            s = r.stats(tuple(key))
            return s["median"] if s else None
        return med

    def test_goal_is_the_worst_size(self):
        r = self.results({"256M": 5.0, "2G": 9.5})  # 2G's figures 9.5, 10.5, 11.5
        ok, text = snapshot.goal(self.med(r))
        self.assertFalse(ok)
        self.assertIn("2G: 10.50 ms", text)
        self.assertIn("spawn to running 12.0 ms (cold boot to the same point 25.0 ms)", text)
        r = self.results({"256M": 5.0, "2G": 7.0})
        ok, _ = snapshot.goal(self.med(r))
        self.assertTrue(ok)

    def test_no_figures_no_goal(self):
        self.assertIsNone(snapshot.goal(self.med(Results())))

    def test_rows_per_size(self):
        r = self.results({"256M": 5.0, "2G": 7.0})
        rows = snapshot.rows_of(lambda *k: r.stats(tuple(k)))
        labels = [(row[0], row[2]) for row in rows]
        self.assertIn(("restore in ember", "256M"), labels)
        self.assertIn(("cold boot to serial-wait", "2G"), labels)
        self.assertIn(("restore to running", "256M"), labels)
        self.assertEqual(rows[0][5], "25.0")

    def test_the_restore_line_of_embers_log(self):
        line = ("ember: info: restore: 1 vCPU(s), 0 PCI device(s) and 256 MiB of RAM from st and "
                "mf in 6.87 ms")
        m = snapshot.RESTORED_RE.search(line)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1), "6.87")


if __name__ == "__main__":
    unittest.main()
