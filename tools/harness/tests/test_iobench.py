import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from harness import flake, iobench, options
from harness.output import UsageError

from . import fixtures

# fixtures/io-bench-ember.txt: the guest's console of a real tools/linux-boot --io-bench run.
REAL = fixtures.text("io-bench-ember.txt")


def figures(report_json: bytes) -> str:
    """tests/boot/io-figures.awk run by busybox awk, as the guest runs it."""
    r = subprocess.run(["busybox", "awk", "-f", str(iobench.FIGURES)], input=report_json,
                       capture_output=True, check=True)
    return r.stdout.decode().strip()


class ParseTest(unittest.TestCase):
    def test_a_real_console(self):
        r = iobench.parse(REAL)
        self.assertEqual(r.errors, [])
        self.assertTrue(r.done)
        self.assertEqual(set(r.values), set(iobench.NAMES))
        self.assertEqual(r.summary, f"{len(iobench.NAMES)} passed, 0 failed")
        self.assertAlmostEqual(r.values["randread-4k-qd1"], 1310.137972)
        self.assertAlmostEqual(r.values["write-1m"], 694.723476)  # bytes/s / 1e6, the write side
        self.assertAlmostEqual(r.values["net-rx"], 1807.65351045586)
        self.assertAlmostEqual(r.latency_us["randread-4k-qd1"], 62.916645299)
        out = iobench.lines(r)
        self.assertEqual(len(out), len(iobench.NAMES))
        self.assertEqual(iobench.results("\n".join(out)).keys(), set(iobench.NAMES))

    def test_an_unfinished_run_has_no_summary(self):
        r = iobench.parse(REAL.replace("ember-io: done 0 failed\n", ""))
        self.assertFalse(r.done)
        self.assertEqual(r.summary, "")

    def test_a_missing_figure_fails(self):
        text = "".join(line + "\n" for line in REAL.splitlines() if "iperf3 rx" not in line)
        r = iobench.parse(text)
        self.assertEqual(r.summary, f"{len(iobench.NAMES) - 1} passed, 1 failed")

    def test_the_guests_errors_are_kept(self):
        r = iobench.parse("ember-io: error disk: no virtio disk with serial ember-io after 10 s\n"
                          "ember-io: done 1 failed\n")
        self.assertEqual(r.errors, ["disk: no virtio disk with serial ember-io after 10 s"])
        self.assertTrue(r.summary.endswith(f"{1 + len(iobench.NAMES)} failed"))

    def test_bad_lines_are_errors_not_figures(self):
        bad = ("ember-io: fio randread-4k-qd1 read-bytes=0 read-bw=0 read-iops=0 read-clat-ns=0 "
               "write-bytes=0 write-bw=0 write-iops=0 write-clat-ns=0\n"
               "ember-io: fio read-1m read-bytes=nonsense\n"
               "ember-io: fio made-up-job read-bytes=1\n"
               "ember-io: iperf3 tx error=unable_to_connect_to_server\n"
               "ember-io: iperf3 rx bytes=12 garbage\n"
               "ember-io: iperf3 sideways bytes=1 seconds=1 bps=8\n")
        r = iobench.parse(bad)
        self.assertEqual(r.values, {})
        self.assertEqual(len(r.errors), 6)
        self.assertIn("moved no bytes", r.errors[0])
        self.assertIn("did not ask for", r.errors[2])
        self.assertIn("unable to connect to server", r.errors[3])


@unittest.skipUnless(shutil.which("busybox"), "busybox-static is installed by tools/test")
class FiguresTest(unittest.TestCase):
    """io-figures.awk on the reports of Debian's real fio and iperf3 (installed by tools/test)."""

    def test_fio_reads_and_writes(self):
        self.assertIsNotNone(shutil.which("fio"), "fio is missing: tools/test installs it")
        with tempfile.TemporaryDirectory() as d:
            image = Path(d) / "disk.img"
            image.write_bytes(b"\0" * (8 << 20))
            for name, rw, bs in (("randread-4k-qd1", "randread", "4k"), ("write-1m", "write", "1m")):
                out = subprocess.run(
                    ["fio", f"--name={name}", f"--filename={image}", f"--rw={rw}", f"--bs={bs}",
                     "--iodepth=2", "--ioengine=libaio", "--time_based", "--runtime=1",
                     "--output-format=json"], capture_output=True, check=True).stdout
                r = iobench.parse(f"ember-io: fio {name} {figures(out)}\n")
                self.assertEqual(r.errors, [])
                self.assertGreater(r.values[name], 0)
                self.assertGreater(r.latency_us[name], 0)

    def test_iperf3_both_ways(self):
        self.assertIsNotNone(shutil.which("iperf3"), "iperf3 is missing: tools/test installs it")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for direction, flag in (("tx", []), ("rx", ["-R"])):
                for _ in range(50):  # until the server listens
                    out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", "1",
                                          "-i", "0", "-J", *flag], capture_output=True).stdout
                    if b"unable to connect" not in out:
                        break
                    time.sleep(0.1)
                r = iobench.parse(f"ember-io: iperf3 {direction} {figures(out)}\n")
                self.assertEqual(r.errors, [])
                self.assertGreater(r.values[f"net-{direction}"], 0)
        finally:
            server.kill()
            server.wait()

    def test_a_refused_connection_is_an_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nothing listens there once closed
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", "1", "-J"],
                             capture_output=True).stdout
        r = iobench.parse(f"ember-io: iperf3 tx {figures(out)}\n")
        self.assertEqual(r.values, {})
        self.assertIn("unable to connect", r.errors[0])


class VerdictTest(unittest.TestCase):
    def test_qemu_ending_before_the_guests_last_line_is_a_nested_crash(self):
        cut = iobench.parse(REAL.split("ember-io: fio read-1m")[0])
        failed = flake.Verdict("failed", flake.FAILED, ("the guest printed no report",))
        v = iobench.verdict(failed, "qemu", 0, False, cut)
        self.assertEqual((v.kind, v.status), ("nested-reset", flake.NESTED_CRASH))
        # Not for ember (its crash is status 3 already), a run the harness stopped, QEMU failing
        # otherwise, or a guest that finished its report.
        self.assertIs(iobench.verdict(failed, "ember", 0, False, cut), failed)
        self.assertIs(iobench.verdict(failed, "qemu", 0, True, cut), failed)
        self.assertIs(iobench.verdict(failed, "qemu", 1, False, cut), failed)
        self.assertIs(iobench.verdict(failed, "qemu", 0, False, iobench.parse(REAL)), failed)


class OptionsTest(unittest.TestCase):
    def test_io_bench_runs_in_the_l1(self):
        o = options.parse(["--io-bench", "--monitor", "qemu"], {})
        options.resolve_mode(o, hardware_virt=True)
        self.assertEqual(o.mode, "l1")
        o = options.parse(["--io-bench", "--direct"], {})
        with self.assertRaises(UsageError):
            options.resolve_mode(o, hardware_virt=True)

    def test_io_bench_takes_no_boot_options(self):
        for extra in (["--legacy"], ["--net-balloon"], ["--disk", "/tmp/x"], ["--cpus", "4"],
                      ["--exec-suite"], ["--cmdline", "quiet"]):
            with self.assertRaises(UsageError, msg=extra):
                options.parse(["--io-bench", *extra], {})

    def test_both_monitors_get_the_same_guest(self):
        line = iobench.cmdline()
        ember, qemu = iobench.ember_args(line), iobench.qemu_args(line)
        self.assertEqual(ember[ember.index("--cmdline") + 1], qemu[qemu.index("-append") + 1])
        self.assertEqual(ember[ember.index("--cpus") + 1], qemu[qemu.index("-smp") + 1])
        self.assertEqual(ember[ember.index("--memory") + 1], qemu[qemu.index("-m") + 1])
        self.assertIn(iobench.IMAGE, " ".join(ember))
        self.assertIn(iobench.IMAGE, " ".join(qemu))
        for job, *_ in iobench.FIO_JOBS:
            self.assertIn(job, line)


if __name__ == "__main__":
    unittest.main()
