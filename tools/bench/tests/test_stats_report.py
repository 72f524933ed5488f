import tempfile
import unittest
from pathlib import Path

from bench import plot, runner
from bench.config import HAND_BEGIN, HAND_END, Settings
from bench.report import Facts, Report
from bench.stats import Results

MACHINE = {"cpu": "AMD EPYC 7B13", "cores": 2, "kernel": "6.1.0", "kvm": "PVM (kvm_pvm)",
           "kvm_short": "PVM", "qemu": "7.2.19", "load_start": (1.0, 1.0, 1.0)}


def facts(rows=("kick", "blk", "irq", "startup")):
    r = Results()
    for face in ("legacy", "modern"):
        for ioev in (True, False):
            r.add(("kick", "floor", face, ioev, 0), 2000.0)
            for v in (2050.0, 2150.0, 2100.0):
                r.add(("kick", "ember", face, ioev, 0), v)
            r.add(("kick", "qemu", face, ioev, 0), 3000.0)
            for depth in (1, 32):
                r.add(("blk", "ember", face, ioev, depth), 50000.0)
                r.add(("blk", "qemu", face, ioev, depth), 100000.0)
    r.add(("startup", "ember", "", False, 0), 25.0)
    r.add(("rss", "ember", "", False, 0), 2.8)
    return Facts(list(rows), Settings.make(True, None), r, MACHINE, "tools/bench/run --quick",
                 "2026-12-01 20:00 UTC", 5.0, 2596146, "cache=none,aio=native", True, "no linux")


class StatsTest(unittest.TestCase):
    def test_median_min_max(self):
        r = Results()
        for v in (3.0, 1.0, 2.0, 10.0):
            r.add(("kick", "ember", "modern", True, 0), v)
        self.assertEqual(r.stats(("kick", "ember", "modern", True, 0)),
                         {"median": 2.5, "min": 1.0, "max": 10.0, "runs": 4})
        self.assertIsNone(r.stats(("kick", "qemu", "modern", True, 0)))


class ReportTest(unittest.TestCase):
    def test_tables_and_json(self):
        rep = Report(facts())
        text = rep.text_table()
        self.assertRegex(text, r"\nkick +ember +legacy PIO +on +2,100 +2,050 +2,150 +ns/kick +3 +"
                               r"1\.05x floor\n")
        rows = rep.json_rows()
        blk = [o for o in rows if o["row"] == "blk"][0]
        self.assertEqual((blk["rps_median"], blk["depth"], blk["op"], blk["unit"]),
                         (20000, 1, "read 4 KiB", "ns"))
        kick = [o for o in rows if o["row"] == "kick" and o["monitor"] == "ember"][0]
        self.assertEqual((kick["median"], kick["min"], kick["max"], kick["runs"], kick["kick"]),
                         (2100.0, 2050.0, 2150.0, 3, "PIO"))
        self.assertEqual(rows[-1]["row"], "rss")

    def test_the_switched_kick_row_gives_the_saving_in_one_session(self):
        f = facts(rows=("switch",))
        for v in (2000.0, 2100.0, 2200.0):
            f.results.add(("switch", "ember", "modern", True, 0), v)
            f.results.add(("switch", "ember", "modern", False, 0), 4 * v)
        rep = Report(f)
        text = rep.text_table()
        self.assertRegex(text, r"\nkick, switched +ember +modern MMIO +off +8,400 .*"
                               r"4\.00x the ioeventfd kick, same session$")
        target = [t for t in rep.targets() if "one session" in t[0]][0]
        self.assertEqual(target[1], "**missed**")  # the legacy face is not measured
        self.assertIn("modern MMIO: 4.00x", target[2])
        row = [o for o in rep.json_rows() if o["row"] == "switch"][0]
        self.assertEqual((row["kick"], row["unit"], row["runs"]), ("MMIO", "ns", 3))

    def test_blk_engine_rows_sit_between_ember_and_qemu(self):
        f = facts(rows=("blk",))
        f.results.add(("blk", "ember aio=io_uring", "modern", True, 1), 40000.0)
        f.results.add(("blk", "ember aio=sync", "modern", True, 1), 200000.0)
        rep = Report(f)
        self.assertEqual(rep.blk_monitors(),
                         ["ember", "ember aio=io_uring", "ember aio=sync", "qemu"])
        text = rep.text_table()
        self.assertRegex(text, r"blk read 4K +ember aio=io_uring +modern MMIO +on +1 +40,000 .*"
                               r"25,000 req/s, 0\.40x QEMU\n")
        self.assertRegex(text, r"blk read 4K +ember aio=sync +modern MMIO +on +1 +200,000 .*"
                               r"2\.00x QEMU\n")
        mons = [o["monitor"] for o in rep.json_rows() if o["row"] == "blk"]
        self.assertIn("ember aio=io_uring", mons)

    def test_cpu_rows_compare_with_qemu_and_show_what_polling_spends(self):
        f = facts(rows=("cpu",))
        for mon, v in (("ember", 6.0), ("ember poll=0", 4.5), ("qemu", 8.0)):
            f.results.add(("cpu-blk", mon, "modern", True, 1), v)
        rep = Report(f)
        text = rep.text_table()
        self.assertRegex(text, r"blk CPU time +ember +modern MMIO +on +1 +6\.00 +6\.00 +6\.00 +"
                               r"us/req +1 +0\.75x QEMU\n")
        self.assertRegex(text, r"blk CPU time +ember poll=0 +modern MMIO .* 0\.56x QEMU\n")
        self.assertIn("depth 1: Ember 6.0 us (0.75x QEMU's 8.0 us), 4.5 us with --poll-us 0, "
                      "so polling spends +1.5 us", " ".join(rep.reading()))
        cpu = [o for o in rep.json_rows() if o["row"] == "cpu-blk"]
        self.assertEqual(sorted((o["monitor"], o["depth"], o["unit"]) for o in cpu),
                         [("ember", 1, "us CPU"), ("ember poll=0", 1, "us CPU"),
                          ("qemu", 1, "us CPU")])
        svg = plot.Svg(rep).render()
        self.assertIn("<title>ember poll=0: median 4.50 us (min 4.50, max 4.50)</title>", svg)

    def test_linux_io_rows_compare_with_qemu_higher_is_better(self):
        f = facts(rows=("linux-io",))
        for v in (1200.0, 1300.0, 1250.0):
            f.results.add(("io-randread-4k-qd1", "ember", "", False, 0), v)
        f.results.add(("io-randread-4k-qd1", "qemu", "", False, 0), 1000.0)
        f.results.add(("io-net-rx", "ember", "", False, 0), 900.0)
        f.results.add(("io-net-rx", "qemu", "", False, 0), 1200.0)
        f.results.add(("io-net-rx", "ember vhost", "", False, 0), 2700.0)
        f.results.add(("io-net-rx", "qemu vhost", "", False, 0), 2400.0)
        rep = Report(f)
        text = rep.text_table()
        # With vhost-net, each against the other's vhost-net.
        self.assertRegex(text, r"linux io net-rx \(L1\) +ember vhost=on .* Mbit/s +1 +1\.12x QEMU "
                               r"vhost=on \(higher is better\)\n")
        self.assertIn("net-rx with vhost-net 2,700 against 2,400 Mbit/s (1.12x)",
                      " ".join(rep.reading()))
        self.assertRegex(text, r"linux io randread-4k-qd1 \(L1\) +ember +modern +on +1,250\.0 +"
                               r"1,200\.0 +1,300\.0 +IOPS +3 +1\.25x QEMU \(higher is better\)\n")
        self.assertRegex(text, r"linux io net-rx \(L1\) +qemu q35 +modern.* Mbit/s +1\n")
        self.assertIn("randread-4k-qd1 1,250 against 1,000 IOPS (1.25x); net-rx 900 against "
                      "1,200 Mbit/s (0.75x)", " ".join(rep.reading()))
        units = {(o["row"], o["monitor"]): o["unit"] for o in rep.json_rows()}
        self.assertEqual(units[("io-net-rx", "ember")], "Mbit/s")
        self.assertEqual(units[("io-randread-4k-qd1", "qemu")], "IOPS")
        svg = plot.Svg(rep).render()
        self.assertIn("<title>ember: median 1.25 x QEMU (min 1.20, max 1.30)</title>", svg)
        self.assertIn("<title>qemu: median 1.00 x QEMU (min 1.00, max 1.00)</title>", svg)

    def test_targets(self):
        targets = {t: v for t, v, _ in Report(facts()).targets()}
        self.assertEqual(targets["Ember's kick cost within 10% of the floor"], "met")
        self.assertEqual(targets["ioeventfd kicks >= 3x cheaper than userspace kicks (Ember)"],
                         "**missed**")
        self.assertEqual(targets["Ember's per-request cost <= 0.8x QEMU's"], "met")
        self.assertEqual(targets["start-up < 10 ms (trivial guest)"], "**missed**")

    def test_the_hand_written_block_is_kept(self):
        with tempfile.TemporaryDirectory() as d:
            docs = Path(d)
            (docs / "benchmarks.md").write_text(f"old\n{HAND_BEGIN}\nmy reading\n{HAND_END}\nold\n")
            written = Report(facts()).write_docs(docs)
            md = (docs / "benchmarks.md").read_text()
            self.assertEqual([p.name for p in written], ["benchmarks.md", "benchmarks.svg"])
            self.assertIn(f"{HAND_BEGIN}\nmy reading\n{HAND_END}", md)
            self.assertTrue(md.startswith("# Benchmarks: Ember beside QEMU and the floor\n"))
            self.assertIn("Row 5 (Linux in the emulated-SVM L1) is left out: no linux.", md)
            self.assertNotIn("Flakes of the emulated-SVM L1", md)
            f = facts()
            f.flakes = {"linux-io qemu": 1, "linux-io ember": 2}
            Report(f).write_docs(docs)
            self.assertIn("tried again as the boot tests do): linux-io ember 2, linux-io qemu 1.",
                          (docs / "benchmarks.md").read_text())
            self.assertTrue((docs / "benchmarks.svg").read_text().startswith("<svg "))


class PlotTest(unittest.TestCase):
    def test_axis_and_escaping(self):
        self.assertEqual([plot.nice_ceiling(v) for v in (0, 0.7, 3, 4.2, 7, 23)],
                         [1, 1.0, 5, 5, 10, 25.0])
        self.assertEqual(plot.esc("a<b & c>"), "a&lt;b &amp; c&gt;")

    def test_panels_and_bars(self):
        svg = plot.Svg(Report(facts(("kick", "blk")))).render()
        self.assertEqual(svg.count('font-weight="bold"'), 2)  # kick and blk panels, no irq
        self.assertIn("<title>ember: median 2.10 us (min 2.05, max 2.15)</title>", svg)
        self.assertTrue(svg.endswith("</svg>\n"))


class RunnerTest(unittest.TestCase):
    def test_bench_lines(self):
        out = "PASS x\nBENCH kick face=modern count=10 cycles=2500 tsc_khz=2500000\nBENCH blk depth=1\n"
        self.assertEqual(runner.parse_bench(out), [
            ("kick", {"face": "modern", "count": "10", "cycles": "2500", "tsc_khz": "2500000"}),
            ("blk", {"depth": "1"})])

    def test_rows(self):
        self.assertEqual(runner.rows_asked(None, False),
                         ["kick", "switch", "blk", "cpu", "irq", "startup", "snapshot"])
        self.assertEqual(runner.rows_asked("kick,", True), ["kick", "linux", "linux-io"])
        with self.assertRaises(SystemExit):
            runner.rows_asked("kick,gpu", False)


if __name__ == "__main__":
    unittest.main()
