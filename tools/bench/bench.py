#!/usr/bin/env python3
"""Ember's benchmarks beside QEMU 7.2 and kick-floor (run through tools/bench/run).

Every figure is measured by the test guest (tests/guest/bench*.cpp) in TSC cycles over a timed
loop and converted here with KVM's TSC frequency for this host (kick-floor --tsc-khz), so the
conversion is the same for every monitor. Boots are interleaved: run 1 of every configuration,
then run 2 of every configuration, and so on, so that a change in the machine's load during the
benchmark spreads over all monitors instead of landing on one.

Rows:
  kick     ns per queue kick, tight loop, empty ring (legacy PIO / modern MMIO, ioeventfd on/off)
  blk      ns per 4 KiB virtio-blk read (and requests/s) at queue depth 1 and 32, tmpfs raw file
  irq      kick -> device -> MSI-X -> guest handler round trip (Ember: a 1-byte virtio-rng read)
  startup  process start to exit of a guest that exits at once, and the monitor's max RSS
  linux    Linux boot in the emulated-SVM L1 (tools/linux-boot), when that tool exists and works
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACES = ("legacy", "modern")
KICK_OF = {"legacy": "PIO", "modern": "MMIO"}
MONITORS = ("floor", "ember", "qemu")
ALL_ROWS = ("kick", "blk", "irq", "startup", "linux")
DEFAULT_ROWS = ("kick", "blk", "irq", "startup")  # linux: only when asked for (--rows/--linux)
DEPTHS = (1, 32)
GUEST_MEMORY = "256M"
DISK_BYTES = 64 << 20
QEMU = "qemu-system-x86_64"
GNU_TIME = "/usr/bin/time"  # Debian's `time` package
# The same firmware-light q35 for every QEMU row 1-3 boot: qboot (Debian ships it as
# bios-microvm.bin) instead of SeaBIOS, which takes ~8 s here because this host emulates guest
# kernel-mode code. q35 rather than microvm because microvm has no port I/O to PCI (no legacy
# face); the guest assigns the BARs itself.
QBOOT = "/usr/share/qemu/bios-microvm.bin"
HAND_BEGIN = "<!-- hand-written: tools/bench/run keeps this block as it is -->"
HAND_END = "<!-- end of hand-written block -->"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Settings, machine, scratch space


@dataclass
class Settings:
    runs: int
    startup_runs: int
    kick_count: int
    blk_count: int
    irq_count: int
    timeout: int

    @staticmethod
    def make(quick: bool, runs: int | None) -> "Settings":
        if quick:
            s = Settings(runs=1, startup_runs=3, kick_count=2000, blk_count=400, irq_count=200,
                         timeout=60)
        else:
            s = Settings(runs=5, startup_runs=10, kick_count=20000, blk_count=4000,
                         irq_count=2000, timeout=180)
        if runs is not None:
            s.runs = runs
            s.startup_runs = 2 * runs
        return s


def read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info(qemu_ok: bool) -> dict:
    cpu = "unknown"
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = ""
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1]
            break
    modules = read_text("/proc/modules")
    if Path("/sys/module/kvm_pvm").exists() or re.search(r"^kvm_pvm ", modules, re.M):
        kvm = "PVM (kvm_pvm: no hardware virtualization; guest kernel-mode code is emulated)"
        kvm_short = "PVM"
    elif re.search(r"\bvmx\b", flags):
        kvm, kvm_short = "VMX (kvm_intel)", "VMX"
    elif re.search(r"\bsvm\b", flags):
        kvm, kvm_short = "SVM (kvm_amd)", "SVM"
    else:
        kvm, kvm_short = "unknown", "unknown"
    qemu_version = "not installed"
    if qemu_ok:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=30).stdout
        qemu_version = out.splitlines()[0].replace("QEMU emulator version ", "") if out else "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": os.uname().release,
        "kvm": kvm,
        "kvm_short": kvm_short,
        "qemu": qemu_version,
        "load_start": os.getloadavg(),
    }


def tmpfs_dir() -> Path:
    """A directory on tmpfs for the disk image (/dev/shm, where Debian mounts one)."""
    best, best_type = "", ""
    for line in read_text("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) >= 3 and "/dev/shm".startswith(parts[1]) and len(parts[1]) > len(best):
            best, best_type = parts[1], parts[2]
    if best_type != "tmpfs":
        raise SystemExit("tools/bench: /dev/shm is not a tmpfs here; the disk benchmarks need one")
    return Path(tempfile.mkdtemp(prefix="ember-bench-", dir="/dev/shm"))


def o_direct_works(path: Path) -> bool:
    import mmap
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    try:
        buf = mmap.mmap(-1, 4096)
        return os.preadv(fd, [buf], 0) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Running monitors


@dataclass
class RunResult:
    status: int
    out: str
    err: str
    seconds: float
    maxrss_kib: int
    timed_out: bool


def run_process(cmd: list[str], timeout: float, log_base: Path) -> RunResult:
    """Runs `cmd` with stdin on /dev/null, output to files, killed after `timeout` seconds.
    The wall time is from just before the spawn to the reaping; maxrss is the child's."""
    out_path, err_path = log_base.with_suffix(".out"), log_base.with_suffix(".err")
    timed_out = threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True)

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, wstatus, usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(wstatus)
    return RunResult(p.returncode, out_path.read_text(errors="replace"),
                     err_path.read_text(errors="replace"), seconds, usage.ru_maxrss,
                     timed_out.is_set())


BENCH_RE = re.compile(r"^BENCH (\S+) (.*)$", re.M)


def parse_bench(out: str) -> list[tuple[str, dict]]:
    lines = []
    for m in BENCH_RE.finditer(out):
        kv = dict(part.split("=", 1) for part in m.group(2).split() if "=" in part)
        lines.append((m.group(1), kv))
    return lines


@dataclass
class Boot:
    """One monitor process: which figures it yields and how to start it."""
    monitor: str
    face: str
    ioeventfd: bool
    benches: tuple[str, ...]  # guest tests, e.g. ("bench-kick", "bench-blk")
    cmd: list[str]
    ok_status: int  # the exit status of a guest whose tests all passed

    @property
    def label(self) -> str:
        return f"{self.monitor} {self.face} ioeventfd={'on' if self.ioeventfd else 'off'}"


@dataclass
class Results:
    samples: dict = field(default_factory=dict)  # key -> [values]
    failures: list = field(default_factory=list)

    def add(self, key: tuple, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def stats(self, key: tuple) -> dict | None:
        v = self.samples.get(key)
        if not v:
            return None
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v)}


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.s = Settings.make(args.quick, args.runs)
        self.rows = [r for r in args.rows.split(",") if r] if args.rows else list(DEFAULT_ROWS)
        if args.linux and "linux" not in self.rows:
            self.rows.append("linux")
        for r in self.rows:
            if r not in ALL_ROWS:
                raise SystemExit(f"tools/bench: unknown row '{r}' (rows: {', '.join(ALL_ROWS)})")
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
        self.runs_done = 0

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

    # ---- command lines ----

    def guest_cmdline(self, benches, face) -> str:
        s = self.s
        return (f"tests={','.join(benches)} virtio={face} kick.count={s.kick_count} "
                f"blk.count={s.blk_count} irq.count={s.irq_count}")

    def ember_cmd(self, benches, face, ioeventfd) -> list[str]:
        disk = str(self.disk) + ("" if ioeventfd else ",ioeventfd=off")
        return [str(self.ember), "run", "--kernel", str(self.guest), "--memory", GUEST_MEMORY,
                "--log-level", "warn", "--disk", disk, "--rng",
                "--cmdline", self.guest_cmdline(benches, face)]

    def qemu_cmd(self, benches, face, ioeventfd) -> list[str]:
        onoff = "on" if ioeventfd else "off"
        return [QEMU, "-M", "q35,sata=off,smbus=off", "-bios", QBOOT, "-accel", "kvm",
                "-cpu", "host,-arch-capabilities", "-smp", "1", "-m", GUEST_MEMORY,
                "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                "-kernel", str(self.guest), "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                "-drive", f"file={self.disk},if=none,id=d0,format=raw,{self.qemu_cache}",
                "-device", f"virtio-blk-pci,drive=d0,ioeventfd={onoff}",
                "-device", "virtio-rng-pci",
                "-append", self.guest_cmdline(benches, face)]

    def floor_cmd(self, benches, face, ioeventfd, irq, drain=True) -> list[str]:
        cmd = [str(self.floor), "--kernel", str(self.guest)]
        if ioeventfd:
            cmd.append("--ioeventfd")
            if not drain:
                cmd.append("--no-drain")
        if irq:
            cmd.append("--irq")
        return cmd + ["--cmdline", self.guest_cmdline(benches, face)]

    def boots(self) -> list[Boot]:
        rows = self.rows
        boots = []
        for face in FACES:
            for ioeventfd in (True, False):
                if "kick" in rows:
                    boots.append(Boot("floor", face, ioeventfd, ("bench-kick",),
                                      self.floor_cmd(["bench-kick"], face, ioeventfd, False), 0))
                if "kick" in rows and ioeventfd:
                    # Reference: nobody waits on the eventfd, so no thread is woken per kick.
                    boots.append(Boot("floor-nodrain", face, ioeventfd, ("bench-kick",),
                                      self.floor_cmd(["bench-kick"], face, ioeventfd, False,
                                                     drain=False), 0))
                benches = []
                if "kick" in rows:
                    benches.append("bench-kick")
                if "blk" in rows:
                    benches.append("bench-blk")
                if "irq" in rows and ioeventfd:  # virtio-rng: ioeventfd always on
                    benches.append("bench-irq")
                if not benches:
                    continue
                boots.append(Boot("ember", face, ioeventfd, tuple(benches),
                                  self.ember_cmd(benches, face, ioeventfd), 0))
                # isa-debug-exit: QEMU exits with (status << 1) | 1.
                boots.append(Boot("qemu", face, ioeventfd, tuple(benches),
                                  self.qemu_cmd(benches, face, ioeventfd), 1))
            if "irq" in rows:
                boots.append(Boot("floor", face, True, ("bench-irq",),
                                  self.floor_cmd(["bench-irq"], face, True, True), 0))
        return boots

    # ---- running ----

    def fail(self, what: str, r: RunResult | None = None, log_base: Path | None = None) -> None:
        detail = ""
        if r is not None:
            tail = "\n".join((r.out.strip().splitlines() + r.err.strip().splitlines())[-8:])
            detail = f" (status {r.status}{', timed out' if r.timed_out else ''})\n{tail}"
        self.results.failures.append(what + detail)
        log(f"FAILED: {what}{detail}" + (f"\n  logs: {log_base}.*" if log_base else ""))

    def ns(self, kv: dict) -> float:
        cycles, count = int(kv["cycles"]), int(kv["count"])
        guest_khz = int(kv.get("tsc_khz", "0"))
        if guest_khz and abs(guest_khz - self.tsc_khz) > self.tsc_khz / 100:
            log(f"note: the guest's TSC estimate {guest_khz} kHz ({kv.get('tsc')}) differs from "
                f"KVM's {self.tsc_khz} kHz; KVM's is used")
        return cycles * 1e6 / self.tsc_khz / count

    def run_boot(self, b: Boot, run: int) -> None:
        base = self.logs / f"{b.monitor}-{b.face}-{'ioev' if b.ioeventfd else 'user'}-" \
                           f"{'-'.join(x[6:] for x in b.benches)}-run{run}"
        r = run_process(b.cmd, self.s.timeout, base)
        lines = parse_bench(r.out)
        failed = re.search(r"^(\d+) passed, (\d+) failed", r.out, re.M)
        if r.timed_out or r.status != b.ok_status or (failed and failed.group(2) != "0"):
            self.fail(f"{b.label} ({', '.join(b.benches)}), run {run}", r, base)
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
        cmds = {
            "ember": ([str(self.ember), "run", "--kernel", str(self.guest), "--memory",
                       GUEST_MEMORY, "--log-level", "warn", "--cmdline", "tests=bench-exit"], 0),
            "qemu": (self.qemu_microvm_cmd(), 1),
        }
        for mon, (cmd, ok) in cmds.items():
            base = self.logs / f"startup-{mon}-run{run}"
            r = run_process(cmd, 30, base)
            if r.timed_out or r.status != ok:
                self.fail(f"start-up {mon}, run {run}", r, base)
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

    def qemu_microvm_cmd(self) -> list[str]:
        return [QEMU, "-M", "microvm", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
                "-smp", "1", "-m", GUEST_MEMORY, "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", "stdio", "-kernel", str(self.guest),
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-append", "tests=bench-exit"]

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
        self.linux_flakes = 0
        # The same bare machine (no devices: QEMU's microvm has no PCI) for both monitors, the same
        # kernel, initramfs, command line, vCPUs and memory, in the same L1, interleaved.
        # i8042.noprobe for both: microvm has no i8042, and the kernel's probe of the missing
        # controller under the nested emulation stalled or reset the guest.
        for run in range(1, runs + 1):
            for mon in ("ember", "qemu"):
                base = self.logs / f"linux-{mon}-run{run}"
                # Its kernel cache lives in the benchmark's build directory, not in build/.
                cache = Path(self.args.build_dir).resolve() / "linux"
                # Exit 3 or 4 is a flake of the emulated-SVM L1 (tests/boot/README.md): tried again,
                # up to three attempts as in the boot tests, and said so.
                for attempt in range(1, 4):
                    r = run_process([str(tool), "--ember", str(self.ember), "--cache", str(cache),
                                     "--timeout", "300", "--monitor", mon, "--no-devices",
                                     "--cpus", "2", "--memory", "512M",
                                     "--cmdline", "i8042.noprobe"], 420, base)
                    if r.status not in (3, 4) or attempt == 3:
                        break
                    log(f"  linux-boot --monitor {mon}, run {run}: a flake of the L1 (status "
                        f"{r.status}, attempt {attempt}); trying again")
                    self.linux_flakes += 1
                text = r.out + r.err
                # "(... wall, L1 ready for MON at X s of uptime, MON ran Y s)": Y is the monitor's
                # whole run in the L1, start to exit, the guest's checks and power-off included.
                m = re.search(r"(?:ember|qemu) ran (?:for )?([0-9.]+) s", text)
                init = re.search(r"/init at ([0-9.]+) s of uptime", text)
                if r.status != 0 or not m:
                    self.linux_note = (f"tools/linux-boot --monitor {mon} did not pass here "
                                       f"(status {r.status}); the row is left out")
                    self.fail(f"linux-boot --monitor {mon}, run {run}", r, base)
                    return
                self.results.add(("linux", mon, "", False, 0), float(m.group(1)))
                if init:
                    self.results.add(("linux-init", mon, "", False, 0), float(init.group(1)))
                log(f"  linux-boot --monitor {mon}: ran for {m.group(1)} s"
                    + (f", the guest's /init started at {init.group(1)} s of its uptime"
                       if init else ""))

    # ---- --callgrind: user-space instructions per operation (load-independent) ----

    def callgrind_total(self, cmd: list[str], tag: str) -> int:
        """Instructions the monitor executed in user space (all threads), by callgrind."""
        out = self.logs / f"callgrind-{tag}.%p"
        base = self.logs / f"callgrind-{tag}"
        r = run_process(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd,
                        1800, base)
        m = re.search(r"Collected : (\d+)", r.err)
        if r.timed_out or not m or not parse_bench(r.out):
            self.fail(f"callgrind {tag}", r, base)
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
                    cmd = self.floor_cmd([bench], face, ioev, row == "irq")
                elif mon == "ember":
                    cmd = self.ember_cmd([bench], face, ioev)
                else:
                    cmd = self.qemu_cmd([bench], face, ioev)
                self.s.kick_count, self.s.blk_count, self.s.irq_count = saved
                if row == "blk":
                    cmd[-1] += " blk.depth=1"
                totals.append(self.callgrind_total(cmd, f"{row}-{mon}-{face}-{on(ioev)}-{n}"))
            if min(totals) < 0:
                continue
            # Warm-ups: bench-kick count/100+1, bench-blk 4*depth, bench-irq count/100+1.
            ops = {"kick": lambda n: n + n // 100 + 1, "blk": lambda n: n + 4,
                   "irq": lambda n: n + n // 100 + 1}[row]
            per_op = (totals[1] - totals[0]) / (ops(n2) - ops(n1))
            self.results.add(("instr-" + row, mon, face, ioev, 1 if row == "blk" else 0), per_op)
            log(f"  {row:5} {mon:6} {face:7} ioeventfd={on(ioev):3} {per_op:10,.0f} instructions/op")

    def print_results(self, report: "Report", table: str) -> None:
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
            report = Report(self)
            self.print_results(report, report.callgrind_table())
            return 1 if self.results.failures else 0
        boots = self.boots()
        for run in range(1, s.runs + 1):
            if boots:
                log(f"run {run}/{s.runs}")
            for b in boots:
                self.run_boot(b, run)
        if "startup" in self.rows:
            self.spawn_ms = self.spawn_overhead_ms()
            for run in range(1, s.startup_runs + 1):
                self.run_startup(run)
        self.linux_note = ("it runs only when asked for (`--linux`): tools/linux-boot boots Linux "
                           "inside an emulated-SVM L1 under QEMU TCG, which takes minutes per run")
        if "linux" in self.rows:
            self.run_linux()
        self.machine["load_end"] = os.getloadavg()
        self.elapsed = time.time() - t_start
        report = Report(self)
        if not self.args.no_write:
            report.write_docs()
        self.print_results(report, report.text_table())
        log(f"tools/bench: finished in {self.elapsed:.0f} s"
            + (f" with {len(self.results.failures)} failure(s)" if self.results.failures else ""))
        return 1 if self.results.failures else 0


# ---------------------------------------------------------------------------------------------
# Reporting


def fmt_ns(v: float) -> str:
    return f"{v:,.0f}"


class Report:
    def __init__(self, bench: Bench):
        self.b = bench
        self.r = bench.results
        self.m = bench.machine

    def st(self, *key):
        return self.r.stats(tuple(key))

    # ---- the figures as rows of cells ----

    def table_rows(self) -> list[list[str]]:
        rows = []
        head = ["row", "monitor", "transport", "ioeventfd", "depth", "median", "min", "max",
                "unit", "runs", "note"]
        rows.append(head)
        if "kick" in self.b.rows:
            for face in FACES:
                for ioev in (True, False):
                    floor = self.st("kick", "floor", face, ioev, 0)
                    for mon in ("floor-nodrain",) + MONITORS:
                        s = self.st("kick", mon, face, ioev, 0)
                        if not s:
                            continue
                        note = ""
                        if mon == "floor-nodrain":
                            note = "reference: eventfd never read, no wake-up per kick"
                        elif mon != "floor" and floor:
                            note = f"{s['median'] / floor['median']:.2f}x floor"
                        rows.append(["kick", mon, f"{face} {KICK_OF[face]}", on(ioev), "",
                                     fmt_ns(s["median"]), fmt_ns(s["min"]), fmt_ns(s["max"]),
                                     "ns/kick", str(s["runs"]), note])
        if "blk" in self.b.rows:
            for face in FACES:
                for ioev in (True, False):
                    for depth in DEPTHS:
                        q = self.st("blk", "qemu", face, ioev, depth)
                        for mon in ("ember", "qemu"):
                            s = self.st("blk", mon, face, ioev, depth)
                            if not s:
                                continue
                            note = f"{1e9 / s['median']:,.0f} req/s"
                            if mon == "ember" and q:
                                note += f", {s['median'] / q['median']:.2f}x QEMU"
                            rows.append(["blk read 4K", mon, f"{face} {KICK_OF[face]}", on(ioev),
                                         str(depth), fmt_ns(s["median"]), fmt_ns(s["min"]),
                                         fmt_ns(s["max"]), "ns/req", str(s["runs"]), note])
        if "irq" in self.b.rows:
            for face in FACES:
                floor = self.st("irq", "floor", face, True, 0)
                for mon in MONITORS:
                    s = self.st("irq", mon, face, True, 0)
                    if not s:
                        continue
                    note = "kick + MSI" if mon == "floor" else "1-byte virtio-rng read"
                    if mon != "floor" and floor:
                        note += f", {s['median'] / floor['median']:.2f}x floor"
                    rows.append(["irq round trip", mon, f"{face} {KICK_OF[face]}", "on", "",
                                 fmt_ns(s["median"]), fmt_ns(s["min"]), fmt_ns(s["max"]),
                                 "ns/irq", str(s["runs"]), note])
        if "startup" in self.b.rows:
            for row, label, unit, note in (
                    ("startup", "start-up", "ms", "process start to exit, guest exits at once"),
                    ("rss", "max RSS", "MiB", "")):
                for mon in ("ember", "qemu"):
                    s = self.st(row, mon, "", False, 0)
                    if s:
                        rows.append([label, mon if mon == "ember" else "qemu microvm", "", "", "",
                                     f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}",
                                     unit, str(s["runs"]), note])
        if "linux" in self.b.rows:
            for row, label, note in (
                    ("linux", "linux (L1)", "tools/linux-boot --no-devices: the monitor's run in "
                     "the emulated-SVM L1, start to exit"),
                    ("linux-init", "linux init (L1)", "the guest kernel's uptime when /init started")):
                for mon in ("ember", "qemu"):
                    s = self.st(row, mon, "", False, 0)
                    if s:
                        rows.append([label, mon if mon == "ember" else "qemu microvm", "", "", "",
                                     f"{s['median']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}",
                                     "s", str(s["runs"]), note])
        return rows

    def text_table(self) -> str:
        rows = self.table_rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        numeric = {5, 6, 7, 9}
        out = [self.title()]
        for r in rows:
            cells = [c.rjust(widths[i]) if i in numeric else c.ljust(widths[i])
                     for i, c in enumerate(r)]
            out.append("  ".join(cells).rstrip())
        if self.r.failures:
            out.append(f"{len(self.r.failures)} run(s) FAILED; see the log above")
        return "\n".join(out)

    def markdown_table(self) -> str:
        rows = self.table_rows()
        out = ["| " + " | ".join(rows[0]) + " |",
               "|" + "|".join("---:" if i in (4, 5, 6, 7, 9) else "---" for i in range(len(rows[0]))) + "|"]
        for r in rows[1:]:
            out.append("| " + " | ".join(r) + " |")
        return "\n".join(out)

    def title(self) -> str:
        return (f"Ember benchmarks, {self.b.date}: {self.m['cpu']} x{self.m['cores']}, "
                f"KVM {self.m['kvm_short']}, QEMU {self.m['qemu']}")

    def callgrind_table(self) -> str:
        out = [f"User-space instructions per operation (valgrind --tool=callgrind), {self.b.date}",
               f"{'operation':22} {'transport':12} {'ioeventfd':9} " +
               " ".join(f"{m:>10}" for m in MONITORS)]
        names = {"instr-kick": "kick", "instr-blk": "blk read 4K, depth 1",
                 "instr-irq": "irq round trip"}
        keys = sorted({(k[0], k[2], k[3]) for k in self.r.samples if k[0].startswith("instr-")},
                      key=lambda k: (list(names).index(k[0]), k[1], not k[2]))
        for row, face, ioev in keys:
            cells = []
            for mon in MONITORS:
                depth = 1 if row == "instr-blk" else 0
                st = self.st(row, mon, face, ioev, depth)
                cells.append(f"{st['median']:>10,.0f}" if st else f"{'-':>10}")
            out.append(f"{names[row]:22} {face + ' ' + KICK_OF[face]:12} {on(ioev):9} " +
                       " ".join(cells))
        if self.r.failures:
            out.append(f"{len(self.r.failures)} run(s) FAILED; see the log above")
        return "\n".join(out)

    # ---- JSON ----

    def json_rows(self) -> list[dict]:
        objs = []
        r3 = lambda v: round(v, 1)
        for key in sorted(self.r.samples, key=lambda k: (ALL_ROWS_ORDER(k[0]), str(k))):
            row, mon, face, ioev, depth = key
            s = self.r.stats(key)
            o: dict = {"row": row, "monitor": mon}
            if row in ("kick", "blk", "irq", "instr-kick", "instr-blk", "instr-irq"):
                o["transport"] = face
                o["kick"] = KICK_OF[face]
                o["ioeventfd"] = ioev
            if row in ("blk", "instr-blk"):
                o["depth"] = depth
                o["op"] = "read 4 KiB"
            if row == "irq":
                o["request"] = "kick+MSI" if mon == "floor" else "virtio-rng 1 byte"
            unit = {"kick": "ns", "blk": "ns", "irq": "ns", "startup": "ms", "rss": "MiB",
                    "linux": "s", "linux-init": "s"}.get(row, "instructions")
            o.update({"median": r3(s["median"]), "min": r3(s["min"]), "max": r3(s["max"]),
                      "unit": unit, "runs": s["runs"]})
            if row == "blk":
                o["rps_median"] = round(1e9 / s["median"])
                o["rps_min"] = round(1e9 / s["max"])
                o["rps_max"] = round(1e9 / s["min"])
            objs.append(o)
        return objs

    # ---- targets ----

    def targets(self) -> list[tuple[str, str, str]]:
        """(target, verdict, detail) for each target of the benchmark issue."""
        out = []
        med = lambda *k: (self.st(*k) or {}).get("median")
        if "kick" in self.b.rows:
            parts, ok = [], True
            for face in FACES:
                for ioev in (True, False):
                    e, f = med("kick", "ember", face, ioev, 0), med("kick", "floor", face, ioev, 0)
                    if e is None or f is None:
                        ok = False
                        continue
                    d = e / f - 1
                    ok &= d <= 0.10
                    parts.append(f"{face} {KICK_OF[face]} ioeventfd {on(ioev)}: {d * 100:+.0f}%")
            out.append(("Ember's kick cost within 10% of the floor", verdict(ok, parts),
                        "; ".join(parts)))
            parts, ok = [], True
            for mon in ("ember", "floor", "qemu"):
                for face in FACES:
                    a, b = med("kick", mon, face, True, 0), med("kick", mon, face, False, 0)
                    if a is None or b is None:
                        continue
                    if mon == "ember":
                        ok &= b / a >= 3
                    parts.append(f"{mon} {face}: {b / a:.2f}x")
            out.append(("ioeventfd kicks >= 3x cheaper than userspace kicks (Ember)",
                        verdict(ok, parts), "; ".join(parts)))
        if "blk" in self.b.rows:
            parts, ok = [], True
            for face in FACES:
                for ioev in (True, False):
                    for depth in DEPTHS:
                        e = med("blk", "ember", face, ioev, depth)
                        q = med("blk", "qemu", face, ioev, depth)
                        if e is None or q is None:
                            ok = False
                            continue
                        ok &= e / q <= 0.8
                        parts.append(f"{face} ioeventfd {on(ioev)} depth {depth}: {e / q:.2f}x")
            out.append(("Ember's per-request cost <= 0.8x QEMU's", verdict(ok, parts),
                        "; ".join(parts)))
        if "startup" in self.b.rows:
            t, rss = med("startup", "ember", "", False, 0), med("rss", "ember", "", False, 0)
            if t is not None:
                out.append(("start-up < 10 ms (trivial guest)", verdict(t < 10, [1]),
                            f"Ember {t:.1f} ms (QEMU microvm {med('startup', 'qemu', '', False, 0) or 0:.1f} ms)"))
            if rss is not None:
                out.append(("max RSS < 4 MiB (trivial guest)", verdict(rss < 4, [1]),
                            f"Ember {rss:.1f} MiB (QEMU microvm {med('rss', 'qemu', '', False, 0) or 0:.1f} MiB)"))
        if "linux" in self.b.rows:
            e, q = med("linux", "ember", "", False, 0), med("linux", "qemu", "", False, 0)
            if e is not None and q is not None:
                out.append(("Linux boot in the L1 <= 0.7x QEMU's time", verdict(e / q <= 0.7, [1]),
                            f"run to power-off: Ember {e:.2f} s, QEMU microvm {q:.2f} s "
                            f"({e / q:.2f}x)"))
        return out

    # ---- the reading, in sentences computed from the figures ----

    def reading(self) -> list[str]:
        med = lambda *k: (self.st(*k) or {}).get("median")
        out = []
        if "kick" in self.b.rows:
            for ioev in (True, False):
                bits = []
                for face in FACES:
                    f, e, q = (med("kick", m, face, ioev, 0) for m in MONITORS)
                    if None in (f, e, q):
                        continue
                    bits.append(f"{face} {KICK_OF[face]}: floor {f / 1000:.2f} us, Ember "
                                f"{e / 1000:.2f} us ({(e / f - 1) * 100:+.0f}%), QEMU {q / 1000:.2f} us "
                                f"({(q / f - 1) * 100:+.0f}%)")
                if bits:
                    out.append(f"Kicks with ioeventfd {on(ioev)}: " + "; ".join(bits) + ".")
        if "blk" in self.b.rows:
            wins, losses = [], []
            for face in FACES:
                for ioev in (True, False):
                    for depth in DEPTHS:
                        e = med("blk", "ember", face, ioev, depth)
                        q = med("blk", "qemu", face, ioev, depth)
                        if e is None or q is None:
                            continue
                        what = f"{face} ioeventfd {on(ioev)} depth {depth} ({e / q:.2f}x)"
                        (wins if e < q else losses).append(what)
            if wins:
                out.append("Ember serves 4 KiB reads faster than QEMU for " + ", ".join(wins) + ".")
            if losses:
                out.append("QEMU is faster (or equal) for " + ", ".join(losses) + ".")
        if "irq" in self.b.rows:
            bits = []
            for face in FACES:
                f, e, q = (med("irq", m, face, True, 0) for m in MONITORS)
                if None in (f, e):
                    continue
                s = f"{face}: floor {f / 1000:.1f} us, Ember {e / 1000:.1f} us"
                if q is not None:
                    s += f", QEMU {q / 1000:.1f} us"
                bits.append(s)
            if bits:
                out.append("Interrupt round trips (kick, device, MSI-X, guest handler): "
                           + "; ".join(bits) + ".")
        if "startup" in self.b.rows:
            e, q = med("startup", "ember", "", False, 0), med("startup", "qemu", "", False, 0)
            er, qr = med("rss", "ember", "", False, 0), med("rss", "qemu", "", False, 0)
            if e is not None and q is not None:
                out.append(f"Start-up: Ember {e:.1f} ms and {er:.1f} MiB, QEMU microvm {q:.1f} ms "
                           f"and {qr:.1f} MiB (spawning /bin/true alone takes "
                           f"{self.b.spawn_ms:.1f} ms here).")
        if "linux" in self.b.rows:
            e, q = med("linux", "ember", "", False, 0), med("linux", "qemu", "", False, 0)
            ei, qi = med("linux-init", "ember", "", False, 0), med("linux-init", "qemu", "", False, 0)
            if e is not None and q is not None:
                out.append(f"Linux in the emulated-SVM L1 (bare machine, 2 vCPUs, 512 MiB): Ember "
                           f"ran {e:.2f} s from start to the guest's power-off, QEMU microvm "
                           f"{q:.2f} s ({e / q:.2f}x)"
                           + (f"; the guest's /init started at {ei:.2f} s and {qi:.2f} s of its "
                              "uptime" if ei is not None and qi is not None else "") + ".")
        return out

    # ---- documents ----

    def write_docs(self) -> None:
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        (docs / "benchmarks.svg").write_text(Svg(self).render())
        md = docs / "benchmarks.md"
        hand = DEFAULT_HAND_WRITTEN
        if md.exists():
            old = md.read_text()
            if HAND_BEGIN in old and HAND_END in old:
                hand = old[old.index(HAND_BEGIN) + len(HAND_BEGIN):old.index(HAND_END)].strip("\n")
        md.write_text(self.markdown(hand))
        log(f"wrote {md.relative_to(ROOT)} and docs/benchmarks.svg")

    def markdown(self, hand: str) -> str:
        b, m, s = self.b, self.m, self.b.s
        la0, la1 = m["load_start"], m.get("load_end", m["load_start"])
        lines = [
            "# Benchmarks: Ember beside QEMU and the floor",
            "",
            "Generated by `tools/bench/run` (the tables, figures and the computed reading below are",
            "rewritten on every run; only the hand-written block is kept).",
            "",
            f"- **Command:** `{b.command}`",
            f"- **Date:** {b.date}",
            f"- **Machine:** {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}",
            f"- **KVM:** {m['kvm']}",
            f"- **QEMU:** {m['qemu']}",
            f"- **Load average** (1/5/15 min) at the start {la0[0]:.1f}/{la0[1]:.1f}/{la0[2]:.1f}, "
            f"at the end {la1[0]:.1f}/{la1[1]:.1f}/{la1[2]:.1f}; the run took {b.elapsed:.0f} s",
            f"- **Runs:** {s.runs} per figure (start-up {s.startup_runs}), interleaved; median, "
            f"min and max of the runs; {s.kick_count} kicks, {s.blk_count} requests per depth, "
            f"{s.irq_count} round trips per run",
            f"- **TSC:** {b.tsc_khz} kHz (KVM_GET_TSC_KHZ), used to convert every monitor's cycles",
            "",
            "![rows 1-3 as grouped bars](benchmarks.svg)",
            "",
            "## Figures",
            "",
            self.markdown_table(),
            "",
        ]
        if self.r.failures:
            lines += ["**Failed runs** (their figures are missing above):", ""]
            lines += [f"- `{f.splitlines()[0]}`" for f in self.r.failures] + [""]
        lines += ["## Targets", "", "| target | verdict | figures |", "|---|---|---|"]
        for t, v, d in self.targets():
            lines.append(f"| {t} | {v} | {d} |")
        if "linux" not in b.rows or not self.st("linux", "ember", "", False, 0):
            lines += ["", f"Row 5 (Linux in the emulated-SVM L1) is left out: {b.linux_note}."]
        lines += ["", "## The figures in sentences (computed)", ""]
        lines += [f"- {x}" for x in self.reading()]
        lines += ["", HAND_BEGIN, hand, HAND_END, "",
                  "## How each figure is measured", "", METHOD.format(
                      qemu_cache=b.qemu_cache, direct="yes" if b.direct else "no",
                      mem=GUEST_MEMORY, qboot=QBOOT), ""]
        return "\n".join(lines)


def ALL_ROWS_ORDER(row: str) -> int:
    order = ("kick", "blk", "irq", "startup", "rss", "linux", "linux-init", "instr-kick", "instr-blk",
             "instr-irq")
    return order.index(row) if row in order else 99


def on(b: bool) -> str:
    return "on" if b else "off"


def verdict(ok: bool, parts) -> str:
    if not parts:
        return "not measured"
    return "met" if ok else "**missed**"


METHOD = """\
All figures come from the freestanding test guest (`tests/guest/bench*.cpp`, run only when named:
`tests=bench-kick`, `bench-blk`, `bench-irq`, `bench-exit`), the same ELF under every monitor,
1 vCPU and {mem} of RAM. The guest times each loop with the TSC and prints
`BENCH <name> face=... count=N cycles=C ...`; the cycles are converted here with KVM's TSC
frequency, so no monitor's clock or calibration enters the figures. (The guest also prints its
own estimate, from CPUID 0x15/0x16/0x40000010 or kvmclock, falling back to the PIT.)

- **kick**: the guest drives a virtio-blk device to DRIVER_OK (MSI-X on, queue 0 with an empty
  ring) and writes queue 0's notify register N times in a 3-instruction loop (`out`/`mov`,
  `dec`, `jnz`): the legacy face's 16-bit port (PIO) or the modern face's notify address (MMIO).
  The device wakes for every kick and finds nothing. The floor is `kick-floor` (tools/bench):
  the same loop against a port or MMIO address that it serves with a bare ioeventfd (drained by
  one epoll thread, as a VMM must) or counts in its vCPU loop. `floor-nodrain` is a reference
  below the floor: the ioeventfd is never read while the guest runs, so a kick costs only KVM's
  in-kernel signalling and wakes no thread. The difference between the two is the price of
  waking the monitor's thread, which a busier consumer partly avoids (kicks that arrive while
  it is still running coalesce into one wake-up), so a monitor can come out below `floor`.
- **blk**: 4 KiB reads (`VIRTIO_BLK_T_IN`), sequential over the first 64 MiB of a raw file on
  tmpfs, kept at queue depth 1 or 32, after a warm-up. Fixed 3-descriptor chains, no indirect
  descriptors, no EVENT_IDX; the device raises an MSI-X interrupt for every completion while the
  guest polls the used ring with interrupts disabled (so the guest's interrupt handler, emulated
  and identical under every monitor, is not in the figure; `blk.wait=hlt` would include it).
  Ember opens the file with O_DIRECT where the file system allows it (tmpfs O_DIRECT here:
  {direct}) and submits with Linux AIO; QEMU runs with `{qemu_cache}`.
- **irq**: per round trip the guest publishes one buffer, kicks (ioeventfd), halts until the
  interrupt and checks the used ring. Ember: a 1-byte virtio-rng read, the smallest request that
  completes with an MSI-X interrupt. QEMU: the same with virtio-rng-pci. Floor: `kick-floor
  --ioeventfd --irq` answers every kick with an irqfd write on a GSI routed as an MSI to the
  guest's vector.
- **start-up**: wall time from just before the monitor process is spawned until it is reaped,
  guest `tests=bench-exit` (it writes the debug-exit port as soon as it has read its command
  line), and the process's maximum RSS, from a second run of the same command under GNU time
  (`%M`). QEMU: `-M microvm` (qboot firmware, PVH entry), `-nodefaults`, serial on stdio.
- **QEMU rows 1-3** run `-M q35,sata=off,smbus=off` with qboot (`-bios {qboot}`)
  instead of SeaBIOS, which takes about 8 s here because this host emulates guest kernel-mode
  code; microvm has no port I/O to PCI, so q35 is what offers both faces.
  `-device virtio-blk-pci,ioeventfd=on|off`, `-device virtio-rng-pci`,
  `-cpu host,-arch-capabilities`, `-smp 1`.
- **linux** (`--linux`, row 5): `tools/linux-boot --l1 --no-devices --cpus 2 --memory 512M
  --cmdline i8042.noprobe` with `--monitor ember` and `--monitor qemu`, interleaved: Debian's
  cloud kernel (PVH vmlinux) and the boot test's initramfs in the emulated-SVM L1, once under
  ember and once under `qemu-system-x86_64 -M microvm,rtc=on -accel kvm -cpu host` (qboot, PVH
  entry, serial on stdio), which the harness copies into the L1 with its libraries. rtc=on:
  without a CMOS clock the guest's rtc_cmos probe spent 17 s there; i8042.noprobe (both
  monitors): microvm has no i8042, and probing for one stalled or reset the guest. The figures are the L1's
  measure of the monitor's run, from its start to its exit after the guest's power-off, and the
  guest kernel's uptime when its /init started.
- Boots are interleaved (run 1 of every configuration, then run 2, ...), so load that changes
  during the benchmark spreads over all monitors. Timings are never asserted: CI runs
  `tools/bench/run --quick --no-write` (ctest label `bench`) only to prove the benchmark works.
"""

DEFAULT_HAND_WRITTEN = """\
## Reading the figures

(Hand-written analysis goes here; tools/bench/run keeps this block.)"""


# ---------------------------------------------------------------------------------------------
# The plot: rows 1-3 as grouped bars with min-max whiskers, SVG written by hand.


class Svg:
    COLORS = {"floor": "#8c8c8c", "ember": "#e8743b", "qemu": "#3b7de8"}

    def __init__(self, report: Report):
        self.rep = report

    def panels(self) -> list[tuple[str, list[tuple[str, list[tuple[str, dict]]]]]]:
        st = self.rep.st
        panels = []
        if "kick" in self.rep.b.rows:
            groups = []
            for face in FACES:
                for ioev in (True, False):
                    bars = [(m, st("kick", m, face, ioev, 0)) for m in MONITORS]
                    groups.append((f"{face} {KICK_OF[face]} ioeventfd {on(ioev)}", bars))
            panels.append(("Kick cost (us per kick; lower is better)", groups))
        if "blk" in self.rep.b.rows:
            groups = []
            for face in FACES:
                for ioev in (True, False):
                    for depth in DEPTHS:
                        bars = [(m, st("blk", m, face, ioev, depth)) for m in ("ember", "qemu")]
                        groups.append((f"{face} {on(ioev)} QD{depth}", bars))
            panels.append(("4 KiB read (us per request; lower is better)", groups))
        if "irq" in self.rep.b.rows:
            groups = []
            for face in FACES:
                bars = [(m, st("irq", m, face, True, 0)) for m in MONITORS]
                groups.append((f"{face} {KICK_OF[face]}", bars))
            panels.append(("Kick -> MSI-X -> handler round trip (us; lower is better)", groups))
        return panels

    def render(self) -> str:
        width, panel_h, top = 960, 260, 40
        panels = self.panels()
        height = top + len(panels) * (panel_h + 40) + 20
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
               f'<rect width="{width}" height="{height}" fill="white"/>',
               f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
               f'{esc(self.rep.title())}</text>']
        lx = width - 250
        for i, m in enumerate(MONITORS):
            out.append(f'<rect x="{lx + i * 80}" y="30" width="12" height="12" fill="{self.COLORS[m]}"/>'
                       f'<text x="{lx + i * 80 + 16}" y="40">{"kick-floor" if m == "floor" else m}</text>')
        y0 = top + 20
        for title, groups in panels:
            out += self.panel(title, groups, 70, y0, width - 90, panel_h)
            y0 += panel_h + 40
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def panel(self, title, groups, x, y, w, h) -> list[str]:
        out = [f'<text x="{x}" y="{y}" font-size="13" font-weight="bold">{esc(title)}</text>']
        plot_top, plot_h = y + 12, h - 60
        vmax = max([s["max"] for _, bars in groups for _, s in bars if s] + [1]) / 1000
        vmax = nice_ceiling(vmax)
        for i in range(6):
            v = vmax * i / 5
            yy = plot_top + plot_h - plot_h * i / 5
            out.append(f'<line x1="{x}" x2="{x + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>'
                       f'<text x="{x - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:g}</text>')
        gw = w / max(1, len(groups))
        for gi, (label, bars) in enumerate(groups):
            bw = min(28, (gw - 16) / max(1, len(bars)))
            gx = x + gi * gw + (gw - bw * len(bars)) / 2
            for bi, (mon, s) in enumerate(bars):
                bx = gx + bi * bw
                if not s:
                    continue
                med, lo, hi = s["median"] / 1000, s["min"] / 1000, s["max"] / 1000
                bh = plot_h * med / vmax
                out.append(f'<rect x="{bx:.1f}" y="{plot_top + plot_h - bh:.1f}" width="{bw - 2:.1f}" '
                           f'height="{bh:.1f}" fill="{self.COLORS[mon]}"><title>{mon}: median '
                           f'{med:.2f} us (min {lo:.2f}, max {hi:.2f})</title></rect>')
                cx = bx + (bw - 2) / 2
                y_lo, y_hi = plot_top + plot_h * (1 - lo / vmax), plot_top + plot_h * (1 - hi / vmax)
                out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y_lo:.1f}" y2="{y_hi:.1f}" '
                           f'stroke="black"/>')
            out.append(f'<text x="{x + gi * gw + gw / 2:.1f}" y="{plot_top + plot_h + 16}" '
                       f'text-anchor="middle" font-size="11">{esc(label)}</text>')
        out.append(f'<line x1="{x}" x2="{x + w}" y1="{plot_top + plot_h}" y2="{plot_top + plot_h}" '
                   f'stroke="black"/>')
        return out


def nice_ceiling(v: float) -> float:
    if v <= 0:
        return 1
    exp = 10 ** int(f"{v:e}".split("e")[1])
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(prog="tools/bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few iterations, one run (CI smoke)")
    p.add_argument("--json", action="store_true", help="also print one JSON object per row")
    p.add_argument("--no-write", action="store_true", help="do not rewrite docs/")
    p.add_argument("--runs", type=int, help="runs per figure (default 5, --quick 1)")
    p.add_argument("--rows", help="comma-separated subset of " + ",".join(ALL_ROWS))
    p.add_argument("--linux", action="store_true",
                   help="add row 5: tools/linux-boot in the emulated-SVM L1 (minutes per run)")
    p.add_argument("--build-dir", required=True)
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--callgrind", action="store_true",
                   help="instead: user-space instructions per operation under valgrind")
    args = p.parse_args()
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    bench = Bench(args)
    shown = [a for a in sys.argv[1:]]
    # The command as a user types it: the wrapper's default build directory is not shown.
    i = shown.index("--build-dir") if "--build-dir" in shown else -1
    if i >= 0 and Path(shown[i + 1]).resolve() == (ROOT / "build-bench").resolve():
        del shown[i:i + 2]
    bench.command = " ".join(["tools/bench/run"] + shown)
    bench.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return bench.run()


if __name__ == "__main__":
    sys.exit(main())
