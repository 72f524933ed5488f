"""Running the benchmark: the set-up (scratch disk on tmpfs, KVM's TSC frequency), the boots of
rows 1-3 interleaved run by run, the start-up and RSS row, the Linux row (tools/linux-boot, its
L1 flakes tried again as in the boot tests), and --callgrind. Every process runs through
harness/proc.py; ember's runs are checked against their run record (checks.py)."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness import consoles, iobench, proc, record, retry, summary

from . import checks, snapshot, switch
from .commands import Boot, Commands
from .config import (ALL_ROWS, CPU_MONITORS, DEFAULT_ROWS, DEPTHS, DISK_BYTES, FACES, GNU_TIME,
                     MONITORS, QBOOT, QEMU, ROOT, Settings, on)
from .machine import machine_info, o_direct_works, tmpfs_dir
from .report import Facts, Report
from .stats import Results


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class RunResult:
    status: Optional[int]  # None when it was killed at its timeout
    out: str
    err: str
    seconds: float
    maxrss_kib: int
    timed_out: bool
    cpu_s: float = 0.0  # user + system CPU time of the process and all its threads


def run_process(cmd: list[str], timeout: float, log_base: Path,
                term_grace: Optional[float] = None) -> RunResult:
    """Runs `cmd` with stdin on /dev/null, its output in LOG_BASE.out and .err, ended after
    `timeout` seconds. The wall time is from just before the spawn to the reaping; maxrss is the
    child's."""
    out_path, err_path = log_base.with_suffix(".out"), log_base.with_suffix(".err")
    r = proc.run(cmd, timeout, out_path, err_path, term_grace=term_grace)
    return RunResult(r.status, out_path.read_text(errors="replace"),
                     err_path.read_text(errors="replace"), r.seconds, r.maxrss_kib, r.timed_out,
                     r.cpu_s)


BENCH_RE = re.compile(r"^BENCH (\S+) (.*)$", re.M)


def parse_bench(out: str) -> list[tuple[str, dict]]:
    """The test guest's `BENCH <name> key=value ...` lines."""
    lines = []
    for m in BENCH_RE.finditer(out):
        kv = dict(part.split("=", 1) for part in m.group(2).split() if "=" in part)
        lines.append((m.group(1), kv))
    return lines


def rows_asked(rows: Optional[str], linux: bool) -> list[str]:
    out = [r for r in rows.split(",") if r] if rows else list(DEFAULT_ROWS)
    for row in ("linux", "linux-io"):
        if linux and row not in out:
            out.append(row)
    for r in out:
        if r not in ALL_ROWS:
            raise SystemExit(f"tools/bench: unknown row '{r}' (rows: {', '.join(ALL_ROWS)})")
    return out


BLK_ENGINES = ("libaio", "io_uring", "sync")


def blk_engines(text: Optional[str]) -> tuple[str, ...]:
    out = tuple(e for e in (text or "").split(",") if e)
    for e in out:
        if e not in BLK_ENGINES:
            raise SystemExit(f"tools/bench: unknown --blk-engines engine '{e}' (engines: "
                             f"{', '.join(BLK_ENGINES)})")
    return out


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.s = Settings.make(args.quick, args.runs)
        self.rows = rows_asked(args.rows, args.linux)
        bd = Path(args.build_dir).resolve()
        self.ember = bd / "ember"
        self.floor = bd / "kick-floor"
        self.guest = bd / "tests/guest/testguest.elf"
        for p in (self.ember, self.floor, self.guest):
            if not p.exists():
                raise SystemExit(f"tools/bench: {p} is missing (build it, or drop --no-build)")
        self.qemu_ok = shutil.which(QEMU) is not None and Path(QBOOT).exists()
        if not Path(GNU_TIME).exists():
            raise SystemExit(f"tools/bench: {GNU_TIME} is missing (Debian's time package)")
        if not self.qemu_ok:
            raise SystemExit(f"tools/bench: {QEMU} or {QBOOT} is missing (Debian's "
                             "qemu-system-x86 and qemu-system-data)")
        self.results = Results()
        self.scratch = tmpfs_dir()
        self.logs = self.scratch / "logs"
        self.logs.mkdir()
        self.machine = machine_info(self.qemu_ok)
        self.tsc_khz = self.host_tsc_khz()
        self.disk = self.scratch / "disk.img"
        self.make_disk()
        self.direct = o_direct_works(self.disk)
        # QEMU's aio=native needs O_DIRECT (cache=none); tmpfs has it since Linux 6.6.
        self.qemu_cache = "cache=none,aio=native" if self.direct else "cache=writeback,aio=threads"
        self.cmds = Commands(self.ember, self.floor, self.guest, self.disk, self.s, self.qemu_cache,
                             blk_engines(getattr(args, "blk_engines", None)))
        self.command = "tools/bench/run"
        self.date = ""
        self.elapsed = 0.0
        self.spawn_ms = 0.0
        self.flakes: dict[str, int] = {}  # "row monitor" -> L1 flakes tried again
        self.linux_note = ""

    # ---- set-up ----

    def host_tsc_khz(self) -> int:
        r = subprocess.run([str(self.floor), "--tsc-khz"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        if r.returncode != 0 or not r.stdout.strip().isdigit():
            raise SystemExit(f"tools/bench: kick-floor --tsc-khz failed: {r.stderr.strip()}")
        return int(r.stdout.strip())

    def make_disk(self) -> None:
        # Real data (not a sparse hole), so every read copies a page that exists.
        block = bytes(range(256)) * 16
        with open(self.disk, "wb") as f:
            for _ in range(DISK_BYTES // len(block)):
                f.write(block)

    # ---- running ----

    def fail(self, what: str, r: RunResult | None = None, log_base: Path | None = None) -> None:
        detail = ""
        if r is not None:
            tail = "\n".join((r.out.strip().splitlines() + r.err.strip().splitlines())[-8:])
            status = "killed" if r.status is None else r.status
            detail = f" (status {status}{', timed out' if r.timed_out else ''})\n{tail}"
        self.results.failures.append(what + detail)
        log(f"FAILED: {what}{detail}" + (f"\n  logs: {log_base}.*" if log_base else ""))

    def record_problems(self, report: Path, face: str, ioeventfd: bool,
                        benches: tuple[str, ...]) -> list[str]:
        """What ember's run record says went otherwise than the row claims ([] for nothing)."""
        try:
            rec = record.load(report)
        except record.RecordError as e:
            return [str(e)]
        return checks.ember_run(rec, face, ioeventfd, benches)

    def ns(self, kv: dict) -> float:
        cycles, count = int(kv["cycles"]), int(kv["count"])
        guest_khz = int(kv.get("tsc_khz", "0"))
        if guest_khz and abs(guest_khz - self.tsc_khz) > self.tsc_khz / 100:
            log(f"note: the guest's TSC estimate {guest_khz} kHz ({kv.get('tsc')}) differs from "
                f"KVM's {self.tsc_khz} kHz; KVM's is used")
        return cycles * 1e6 / self.tsc_khz / count

    def run_boot(self, b: Boot, run: int) -> None:
        base = self.logs / f"{b.monitor.replace(' ', '-')}-{b.face}-{'ioev' if b.ioeventfd else 'user'}-" \
                           f"{'-'.join(x[6:] for x in b.benches)}-run{run}"
        if b.report is not None:
            b.report.unlink(missing_ok=True)
        r = run_process(b.cmd, self.s.timeout, base)
        lines = parse_bench(r.out)
        failed = re.search(r"^(\d+) passed, (\d+) failed", r.out, re.M)
        if r.timed_out or r.status != b.ok_status or (failed and failed.group(2) != "0"):
            self.fail(f"{b.label} ({', '.join(b.benches)}), run {run}", r, base)
            return
        if b.report is not None:
            problems = self.record_problems(b.report, b.face, b.ioeventfd, b.benches)
            if problems:
                self.fail(f"{b.label} ({', '.join(b.benches)}), run {run}: not the run the row "
                          f"claims: {'; '.join(problems)}", None, base)
                return
        got = []
        want = {"bench-kick": "kick", "bench-blk": "blk", "bench-irq": "irq"}
        for bench in b.benches:
            name = want[bench]
            mine = [kv for n, kv in lines if n == name]
            if not mine:
                self.fail(f"{b.label}: no BENCH {name} line, run {run}", r, base)
                continue
            for kv in mine:
                v = self.ns(kv)
                if name == "blk":
                    depth = int(kv["depth"])
                    self.results.add(("blk", b.monitor, b.face, b.ioeventfd, depth), v)
                    got.append(f"blk d{depth} {v / 1000:.1f} us")
                else:
                    self.results.add((name, b.monitor, b.face, b.ioeventfd, 0), v)
                    got.append(f"{name} {v / 1000:.2f} us")
        log(f"  {b.label:28} {', '.join(got)}  [{r.seconds:.1f} s]")

    def run_startup(self, run: int) -> None:
        """Two processes per monitor and run: one spawned directly and timed, one under GNU time
        for its maximum RSS. (A child forked from this Python process inherits its ~17 MiB
        high-water mark: Linux carries ru_maxrss across exec. GNU time's own child does not.)"""
        report = self.logs / "startup-ember.report.json"
        cmds = {
            "ember": (self.cmds.ember_startup_cmd(report), 0),
            "qemu": (self.cmds.qemu_microvm_cmd(), 1),
        }
        for mon, (cmd, ok) in cmds.items():
            base = self.logs / f"startup-{mon}-run{run}"
            report.unlink(missing_ok=True)
            r = run_process(cmd, 30, base)
            if r.timed_out or r.status != ok:
                self.fail(f"start-up {mon}, run {run}", r, base)
                continue
            if mon == "ember":
                problems = self.record_problems(report, "", False, ())
                if problems:
                    self.fail(f"start-up ember, run {run}: {'; '.join(problems)}", None, base)
                    continue
            rss_file = base.with_suffix(".rss")
            m = run_process([GNU_TIME, "-o", str(rss_file), "-f", "%M"] + cmd, 30,
                            base.with_name(base.name + "-rss"))
            try:
                rss_kib = int(rss_file.read_text().split()[-1])
            except (OSError, ValueError, IndexError):
                self.fail(f"start-up {mon} under {GNU_TIME}, run {run}", m, base)
                continue
            self.results.add(("startup", mon, "", False, 0), r.seconds * 1000)
            self.results.add(("rss", mon, "", False, 0), rss_kib / 1024)
            log(f"  start-up {mon:6} {r.seconds * 1000:7.1f} ms, max RSS {rss_kib / 1024:.1f} MiB")

    def spawn_overhead_ms(self) -> float:
        t = []
        for i in range(5):
            r = run_process(["/bin/true"], 10, self.logs / f"true-{i}")
            t.append(r.seconds * 1000)
        return statistics.median(t)

    def run_linux(self) -> None:
        tool = ROOT / "tools/linux-boot"
        self.linux_note = ""
        if not tool.exists():
            self.linux_note = "tools/linux-boot does not exist in this tree"
            return
        runs = 1 if self.args.quick else max(1, self.s.runs)
        # The same bare machine (no devices: QEMU's microvm has no PCI) for both monitors, the same
        # kernel, initramfs, command line, vCPUs and memory, in the same L1, interleaved.
        # i8042.noprobe for both: microvm has no i8042, and the kernel's probe of the missing
        # controller under the nested emulation stalled or reset the guest.
        for run in range(1, runs + 1):
            for mon in ("ember", "qemu"):
                base = self.logs / f"linux-{mon}-run{run}"
                # Its kernel cache lives in the benchmark's build directory, not in build/.
                cache = Path(self.args.build_dir).resolve() / "linux"
                cmd = [str(tool), "--ember", str(self.ember), "--cache", str(cache),
                       "--timeout", "300", "--monitor", mon, "--no-devices", "--cpus", "2",
                       "--memory", "512M", "--cmdline", "i8042.noprobe"]
                status, r = self.retried(cmd, 420, base, "linux", mon,
                                         f"linux-boot --monitor {mon}, run {run}")
                text = r.out + r.err
                ran = summary.monitor_ran(text)
                init = consoles.init_uptime(text)
                if status != 0 or ran is None:
                    self.linux_note = (f"tools/linux-boot --monitor {mon} did not pass here "
                                       f"(status {r.status}); the row is left out")
                    self.fail(f"linux-boot --monitor {mon}, run {run}", r, base)
                    return
                self.results.add(("linux", mon, "", False, 0), ran)
                if init is not None:
                    self.results.add(("linux-init", mon, "", False, 0), init)
                log(f"  linux-boot --monitor {mon}: ran for {ran:g} s"
                    + (f", the guest's /init started at {init:g} s of its uptime"
                       if init is not None else ""))

    def retried(self, cmd: list[str], timeout: float, base: Path, row: str, mon: str,
                what: str) -> tuple[int, RunResult]:
        """Runs tools/linux-boot; its exit 3 or 4 is a flake of the emulated-SVM L1
        (tests/boot/README.md), tried again up to three attempts as in the boot tests, said so
        and counted. The last attempt's status and result."""
        results: list[RunResult] = []

        def attempt(n: int) -> int:
            # SIGTERM first: linux-boot ends its L1 and cleans up.
            results.append(run_process(cmd, timeout, base, term_grace=10))
            status = results[-1].status
            return -1 if status is None else status

        def flaked(n: int, status: int) -> None:
            log(f"  {what}: a flake of the L1 (status {status}, attempt {n}); trying again")
            key = f"{row} {mon}"
            self.flakes[key] = self.flakes.get(key, 0) + 1

        status, _ = retry.attempts(attempt, flaked)
        return status, results[-1]

    def run_linux_io(self) -> None:
        """Row 6: fio and iperf3 in Linux in the L1 (tools/linux-boot --io-bench), under ember and
        under QEMU q35, interleaved run by run; the L1's flakes tried again as for row 5."""
        tool = ROOT / "tools/linux-boot"
        runs = 1 if self.args.quick else max(1, self.s.runs)
        cache = Path(self.args.build_dir).resolve() / "linux"
        for run in range(1, runs + 1):
            for mon in iobench.MONITORS:
                monitor, vhost = mon.split(" ")[0], mon.endswith(" vhost")
                slug = mon.replace(" ", "-")
                base = self.logs / f"linux-io-{slug}-run{run}"
                cmd = [str(tool), "--io-bench", "--ember", str(self.ember), "--cache", str(cache),
                       "--timeout", "420", "--monitor", monitor] + (["--vhost"] if vhost else [])
                what = f"linux-boot --io-bench --monitor {monitor}{' --vhost' if vhost else ''}"
                status, r = self.retried(cmd, 540, base, "linux-io", mon, f"{what}, run {run}")
                figures = iobench.results(r.out)
                if status != 0 or set(figures) != set(iobench.NAMES):
                    self.fail(f"{what}, run {run}", r, base)
                    continue
                for name, value in figures.items():
                    # With vhost only the network is another path; its disk figures are the
                    # same monitor's again.
                    if vhost and name not in iobench.NET_NAMES:
                        continue
                    self.results.add(("io-" + name, mon, "", False, 0), value)
                log(f"  linux-io {mon:11} " + ", ".join(
                    f"{n} {v:,.0f} {iobench.UNITS[n]}" for n, v in figures.items()))

    # ---- row 1b: the kick path switched in one session (PATCH /ember/devices) ----

    def run_switch(self, run: int) -> None:
        """Per face, one ember boot whose bench-kick rounds alternate ioeventfd on and off
        (switch.py). A round whose kicks did not all come the claimed way is dropped and counted
        as a failure; the run must end as a passed guest and its record must show kicks both
        ways."""
        for face in FACES:
            base = self.logs / f"switch-{face}-run{run}"
            sock = self.scratch / f"switch-{face}-run{run}.sock"
            report = base.with_suffix(".report.json")
            cmd = self.cmds.ember_switch_cmd(face, sock, switch.GAP_MS, report)
            timeout = self.s.timeout + self.s.switch_rounds * switch.GAP_MS / 1000
            r, session = switch.run_session(cmd, sock, self.s.switch_rounds, timeout, base)
            out = base.with_suffix(".out").read_text(errors="replace")
            err = base.with_suffix(".err").read_text(errors="replace")
            result = RunResult(r.status, out, err, r.seconds, r.maxrss_kib, r.timed_out, r.cpu_s)
            failed = re.search(r"^(\d+) passed, (\d+) failed", out, re.M)
            what = f"switch ember {face}, run {run}"
            if session.error or r.timed_out or r.status != 0 or (failed and failed.group(2) != "0"):
                self.fail(what + (f": {session.error}" if session.error else ""), result, base)
                continue
            if len(session.rounds) != self.s.switch_rounds:
                self.fail(f"{what}: {len(session.rounds)} of {self.s.switch_rounds} rounds read",
                          result, base)
                continue
            try:
                rec = record.load(report)
            except record.RecordError as e:
                self.fail(f"{what}: {e}", None, base)
                continue
            problems = checks.switched_run(rec, face)
            if problems:
                self.fail(f"{what}: not the run the row claims: {'; '.join(problems)}", None, base)
                continue
            got = {True: [], False: []}
            for rd in session.rounds:
                if not rd.valid:
                    self.fail(f"{what}: round {rd.index} (ioeventfd {on(rd.ioeventfd)}) had "
                              f"{rd.eventfd_kicks} kicks through ioeventfds and "
                              f"{rd.userspace_kicks} as exits for {rd.count} kicks; dropped",
                              None, base)
                    continue
                v = rd.cycles * 1e6 / self.tsc_khz / rd.count
                self.results.add(("switch", "ember", face, rd.ioeventfd, 0), v)
                got[rd.ioeventfd].append(v)
            med = {k: statistics.median(v) for k, v in got.items() if v}
            log(f"  switch ember {face:6} " + ", ".join(
                f"ioeventfd {on(k)} {v / 1000:.2f} us" for k, v in sorted(med.items(), reverse=True))
                + f" ({len(session.rounds)} rounds)  [{r.seconds:.1f} s]")

    # ---- row 2b: host CPU time per request (rusage) ----

    def run_cpu(self, run: int) -> None:
        """Each monitor's CPU time (user + system, every thread: wait4's rusage) per 4 KiB read,
        from two boots that differ only in the request count: the difference in CPU time over
        the difference in requests leaves out boot, set-up and exit. The guest halts while it
        waits for each completion (`blk.wait=hlt`), so its vCPU spends CPU only on its own work,
        the same under every monitor; what differs is the monitor's own: exits, the event loop,
        and what polling spends (`ember --poll-us 0` beside the default adaptive polling)."""
        n2 = self.s.blk_count
        n1 = max(1, n2 // 5)
        for depth in DEPTHS:
            for mon in CPU_MONITORS:
                cpu = []
                for n in (n1, n2):
                    benches = ["bench-blk"]
                    saved = self.s.blk_count
                    self.s.blk_count = n
                    report = None
                    if mon == "qemu":
                        cmd = self.cmds.qemu_cmd(benches, "modern", True)
                    else:
                        report = self.logs / f"cpu-{depth}-{n}.report.json"
                        cmd = self.cmds.ember_cmd(benches, "modern", True, report)
                        if mon == "ember poll=0":
                            cmd[2:2] = ["--poll-us", "0"]  # after `ember run`
                    self.s.blk_count = saved
                    # The guest's command line is the last argument of QEMU's command and the one
                    # before --report in ember's.
                    at = -1 if report is None else -3
                    cmd[at] += f" blk.depth={depth} blk.wait=hlt"
                    tag = f"cpu-{mon.replace(' ', '-').replace('=', '')}-d{depth}-n{n}-run{run}"
                    base = self.logs / tag
                    if report is not None:
                        report.unlink(missing_ok=True)
                    r = run_process(cmd, self.s.timeout, base)
                    ok = 1 if mon == "qemu" else 0
                    failed = re.search(r"^(\d+) passed, (\d+) failed", r.out, re.M)
                    if (r.timed_out or r.status != ok or (failed and failed.group(2) != "0")
                            or not parse_bench(r.out)):
                        self.fail(f"cpu {mon} depth {depth} count {n}, run {run}", r, base)
                        break
                    if report is not None:
                        problems = self.record_problems(report, "modern", True, tuple(benches))
                        if problems:
                            self.fail(f"cpu {mon} depth {depth} count {n}, run {run}: "
                                      f"{'; '.join(problems)}", None, base)
                            break
                    cpu.append(r.cpu_s)
                if len(cpu) != 2:
                    continue
                per_req_us = (cpu[1] - cpu[0]) * 1e6 / (n2 - n1)
                self.results.add(("cpu-blk", mon, "modern", True, depth), per_req_us)
                log(f"  cpu   {mon:13} depth {depth:2} {per_req_us:7.2f} us CPU/request")

    # ---- --callgrind: user-space instructions per operation (load-independent) ----

    def callgrind_total(self, cmd: list[str], tag: str, mon: str, face: str, ioev: bool,
                        bench: str) -> int:
        """Instructions the monitor executed in user space (all threads), by callgrind."""
        out = self.logs / f"callgrind-{tag}.%p"
        base = self.logs / f"callgrind-{tag}"
        report = base.with_suffix(".report.json")
        if mon == "ember":
            cmd = cmd + ["--report", str(report)]
        r = run_process(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd,
                        1800, base)
        m = re.search(r"Collected : (\d+)", r.err)
        if r.timed_out or not m or not parse_bench(r.out):
            self.fail(f"callgrind {tag}", r, base)
            return -1
        if mon == "ember":
            problems = self.record_problems(report, face, ioev, (bench,))
            if problems:
                self.fail(f"callgrind {tag}: {'; '.join(problems)}", None, base)
                return -1
        return int(m.group(1))

    def run_callgrind(self) -> None:
        """Runs each case at two operation counts; the difference divided by the difference in
        operations is the monitor's user-space cost of one operation, start-up and exit excluded.
        Valgrind serializes threads, so kicks an ioeventfd would coalesce are not measured here:
        the cases are those where every operation reaches the monitor (userspace kicks, requests)."""
        n1, n2 = (200, 1000) if self.args.quick else (1000, 5000)
        cases = []
        for face in FACES:
            for mon in MONITORS:
                cases.append(("kick", mon, face, False, "bench-kick", "kick.count"))
        for ioev in (True, False):
            for mon in ("ember", "qemu"):
                cases.append(("blk", mon, "modern", ioev, "bench-blk", "blk.count"))
        for mon in MONITORS:
            cases.append(("irq", mon, "modern", True, "bench-irq", "irq.count"))
        for row, mon, face, ioev, bench, key in cases:
            totals = []
            for n in (n1, n2):
                saved = (self.s.kick_count, self.s.blk_count, self.s.irq_count)
                self.s.kick_count = self.s.blk_count = self.s.irq_count = n
                if mon == "floor":
                    cmd = self.cmds.floor_cmd([bench], face, ioev, row == "irq")
                elif mon == "ember":
                    cmd = self.cmds.ember_cmd([bench], face, ioev)
                else:
                    cmd = self.cmds.qemu_cmd([bench], face, ioev)
                self.s.kick_count, self.s.blk_count, self.s.irq_count = saved
                # The command line is the guest's, last for every monitor (ember's before
                # --report, added in callgrind_total).
                if row == "blk":
                    cmd[-1] += " blk.depth=1"
                totals.append(self.callgrind_total(cmd, f"{row}-{mon}-{face}-{on(ioev)}-{n}",
                                                   mon, face, ioev, bench))
            if min(totals) < 0:
                continue
            # Warm-ups: bench-kick count/100+1, bench-blk 4*depth, bench-irq count/100+1.
            ops = {"kick": lambda n: n + n // 100 + 1, "blk": lambda n: n + 4,
                   "irq": lambda n: n + n // 100 + 1}[row]
            per_op = (totals[1] - totals[0]) / (ops(n2) - ops(n1))
            self.results.add(("instr-" + row, mon, face, ioev, 1 if row == "blk" else 0), per_op)
            log(f"  {row:5} {mon:6} {face:7} ioeventfd={on(ioev):3} {per_op:10,.0f} instructions/op")

    def facts(self) -> Facts:
        return Facts(self.rows, self.s, self.results, self.machine, self.command, self.date,
                     self.elapsed, self.tsc_khz, self.qemu_cache, self.direct, self.linux_note,
                     self.spawn_ms, dict(self.flakes))

    def print_results(self, report: Report, table: str) -> None:
        """The table, the JSON lines when asked for, and the scratch directory cleaned up."""
        print(table)
        if self.args.json:
            for obj in report.json_rows():
                print(json.dumps(obj))
        if not self.args.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)
        else:
            log(f"scratch kept: {self.scratch}")

    def run(self) -> int:
        t_start = time.time()
        s = self.s
        log(f"tools/bench: {'quick' if self.args.quick else 'full'} run, {s.runs} run(s) per "
            f"figure; KVM TSC {self.tsc_khz} kHz; scratch {self.scratch}")
        if self.args.callgrind:
            self.run_callgrind()
            self.machine["load_end"] = os.getloadavg()
            self.elapsed = time.time() - t_start
            report = Report(self.facts())
            self.print_results(report, report.callgrind_table())
            return 1 if self.results.failures else 0
        boots = self.cmds.boots(self.rows, self.logs)
        for run in range(1, s.runs + 1):
            if boots or "switch" in self.rows or "cpu" in self.rows:
                log(f"run {run}/{s.runs}")
            for b in boots:
                self.run_boot(b, run)
            if "switch" in self.rows:
                self.run_switch(run)
            if "cpu" in self.rows:
                self.run_cpu(run)
        if "startup" in self.rows:
            self.spawn_ms = self.spawn_overhead_ms()
            for run in range(1, s.startup_runs + 1):
                self.run_startup(run)
        if "snapshot" in self.rows:
            log("snapshot: restore against a cold boot (tools/bench/snapshot.py)")
            snapshot.run(self.ember, self.guest, self.scratch, s.runs, s.timeout,
                         self.results.add, lambda what: self.fail(what, None, self.logs), log)
        self.linux_note = ("it runs only when asked for (`--linux`): tools/linux-boot boots Linux "
                           "inside an emulated-SVM L1 under QEMU TCG, which takes minutes per run")
        if "linux" in self.rows:
            self.run_linux()
        if "linux-io" in self.rows:
            self.run_linux_io()
        self.machine["load_end"] = os.getloadavg()
        self.elapsed = time.time() - t_start
        report = Report(self.facts())
        if not self.args.no_write:
            written = report.write_docs(ROOT / "docs")
            log(f"wrote {' and '.join(str(p.relative_to(ROOT)) for p in written)}")
        self.print_results(report, report.text_table())
        log(f"tools/bench: finished in {self.elapsed:.0f} s"
            + (f" with {len(self.results.failures)} failure(s)" if self.results.failures else ""))
        return 1 if self.results.failures else 0
