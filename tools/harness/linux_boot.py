"""tools/linux-boot: boots Debian's cloud kernel with ember (or QEMU) and checks it, from inside
the guest and on the host afterwards. The options and exit statuses are in tools/linux-boot's
header comment, which is also its --help. The steps, each in its module:

  options -> host checks of the machine -> packages and kernel (shell) -> disk images (images)
  -> plan -> guest initramfs (initramfs) -> the boot, directly or in the L1 (qemu, initramfs,
  proc with the console watchdog) -> the consoles and the run record (consoles, record)
  -> the host's checks (hostchecks) -> the verdict (flake) -> the report and the exit status.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import (apiplan, consoles, execsuite, flake, hostchecks, images, initramfs, iobench, options,
               plan as plan_, proc, qemu, record, retry, shell, summary, watchdog)
from .output import Fail, UsageError, header_comment, log

ENTRY = shell.ROOT / "tools/linux-boot"


@dataclass
class Logs:
    """Logs of the last run of each variant, in CACHE/logs/linux-boot-<variant>.*"""
    dir: Path
    variant: str

    def path(self, what: str) -> Path:
        return self.dir / f"linux-boot-{self.variant}.{what}"

    @property
    def l2_console(self) -> Path:
        return self.path("l2-console.log")

    @property
    def ember_log(self) -> Path:  # --direct: ember's stderr
        return self.path("ember.log")

    @property
    def l1_console(self) -> Path:  # --l1: the L1's console, ember's stderr in it
        return self.path("l1-console.log")

    @property
    def record(self) -> Path:  # ember's run record
        return self.path("ember-report.json")


@dataclass
class Run:
    """What a boot left, whichever way it ran."""
    result: proc.Result
    monitor_status: Optional[int]
    disk_names: list[Optional[str]]
    record: Optional[record.Record]
    record_error: str
    l1_console: str


def _record(load) -> tuple[Optional[record.Record], str]:
    try:
        return load(), ""
    except record.RecordError as e:
        return None, str(e)


def boot_direct(o: options.Options, kernel: shell.Kernel, p: plan_.Plan, l2_initramfs: Path,
                logs: Logs) -> Run:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise Fail("--direct needs read-write access to /dev/kvm")
    if o.monitor == "qemu":
        cmd = [qemu.QEMU, *qemu.guest_args(o.cpus, o.mem_kib, str(kernel.vmlinux),
                                           str(l2_initramfs), p.cmdline)]
        log(f"booting Linux {kernel.release} with QEMU on this machine's /dev/kvm "
            f"(timeout {o.timeout} s)")
    else:
        cmd = [o.ember, "run", "--kernel", str(kernel.vmlinux), "--initrd", str(l2_initramfs),
               "--cmdline", p.cmdline]
        for d in p.disks:
            cmd += ["--disk", d.path + d.options]
        cmd += [*p.ember_args, "--report", str(logs.record)]
        log(f"booting Linux {kernel.release} with {o.ember} on this machine's /dev/kvm "
            f"(timeout {o.timeout} s)")
    watch = watchdog.ConsoleWatch({"l2": logs.l2_console}, watchdog.rules("direct", o.monitor))
    r = proc.run(cmd, o.timeout, logs.l2_console, logs.ember_log, watch=watch, term_grace=10)
    rec, error = (None, "") if o.monitor == "qemu" else _record(lambda: record.load(logs.record))
    return Run(r, r.status, [d.path for d in p.disks], rec, error, "")


def boot_l1(o: options.Options, kernel: shell.Kernel, p: plan_.Plan, l2_initramfs: Path,
            work: Path, logs: Logs) -> Run:
    l1_initramfs = initramfs.l1(work, kernel, p, o.monitor, o.ember, o.cpus, o.mem_kib,
                                o.net_balloon, l2_initramfs,
                                apiplan.requests(o, p) if o.api else None, o.snapshot)
    log(f"booting Linux {kernel.release} with "
        f"{'QEMU (microvm)' if o.monitor == 'qemu' else 'ember'} inside an emulated-SVM L1 "
        f"(QEMU TCG, timeout {o.timeout} s)")
    cmd = qemu.l1_command(kernel.bzimage, l1_initramfs, qemu.l1_append(o.verbose), logs.l1_console,
                          logs.l2_console, qemu.l1_drives(p.disks))
    watch = watchdog.ConsoleWatch({"l1": logs.l1_console, "l2": logs.l2_console},
                                  watchdog.rules("l1", o.monitor))
    r = proc.run(cmd, o.timeout, work / "qemu.out", watch=watch, term_grace=10)
    if r.status != 0:
        sys.stderr.write(consoles.read(work / "qemu.out"))
    logs.l1_console.touch()
    l1 = consoles.read(logs.l1_console)
    rec, error = None, ""
    if o.monitor == "ember":
        line = consoles.ember_report(l1)
        if line is None:
            error = (f"{logs.l1_console} has no run record (no '{consoles.L1}ember-report=' line)")
        else:
            logs.record.write_text(line + "\n")
            rec, error = _record(lambda: record.loads(line, f"{logs.l1_console}: ember-report"))
    return Run(r, consoles.ember_status(l1), [consoles.l1_disk(l1, i) for i in range(len(p.disks))],
               rec, error, l1)


def show_log(path: Path, title: str, verbose: bool) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    log(f"{title} ({path}):")
    lines = consoles.read(path).splitlines()
    sys.stderr.write("\n".join(lines if verbose else lines[-40:]) + "\n")
    sys.stderr.flush()


def verdict_status(o: options.Options, logs: Logs, timing: str, problems: list[str], status: int,
                   logs_note: str = "") -> int:
    """The last line of an L1 run of its own (--exec-suite, --io-bench) and its exit status: the
    verdict's, or 1 for problems the verdict did not count."""
    what = plan_.title(o)
    if problems:
        log(f"{what} FAILED ({timing}): {'; '.join(problems)}")
        log(f"logs: {logs.dir}/linux-boot-{logs.variant}.*{logs_note}")
        return status if status != flake.PASSED else flake.FAILED
    log(f"{what} passed ({timing})")
    return flake.PASSED


def run_l1(o: options.Options, kernel: shell.Kernel, l1_initramfs: Path, work: Path, logs: Logs,
           rules: list) -> tuple[proc.Result, float, str]:
    """One L1 of its own initramfs, no drives, its consoles watched by RULES: the result, the
    wall time and the L1's console (QEMU's own output shown when it failed)."""
    start = time.monotonic()
    cmd = qemu.l1_command(kernel.bzimage, l1_initramfs, qemu.l1_append(o.verbose), logs.l1_console,
                          logs.l2_console, [])
    watch = watchdog.ConsoleWatch({"l1": logs.l1_console, "l2": logs.l2_console}, rules)
    r = proc.run(cmd, o.timeout, work / "qemu.out", watch=watch, term_grace=10)
    elapsed = time.monotonic() - start
    if r.status != 0:
        sys.stderr.write(consoles.read(work / "qemu.out"))
    logs.l1_console.touch()
    return r, elapsed, consoles.read(logs.l1_console)


def load_progress(o: options.Options) -> execsuite.Progress:
    """--exec-resume's progress: the checks earlier attempts passed (none without the option)."""
    if not o.exec_resume:
        return execsuite.Progress()
    try:
        return execsuite.load_progress(Path(o.exec_resume))
    except execsuite.ProgressError as e:
        raise Fail(f"--exec-resume {o.exec_resume}: {e}")


def exec_suite(o: options.Options, kernel: shell.Kernel, work: Path, logs: Logs,
               progress: execsuite.Progress) -> int:
    """--exec-suite: one L1 runs tests/boot/l1-exec, whose report is on its second serial port
    (the l2-console log). Its checks are the verdict's guest report, its FLAKE lines (runs it
    tried again) are reported as retries, and its measurements are shown. With --exec-resume
    the checks earlier attempts passed (PROGRESS) are not run again, and the report has them."""
    l1_initramfs = initramfs.l1_exec(work, kernel, o.ember, o.verbose, progress)
    resumed = (f"; attempt {progress.attempts + 1}: the {len(progress.passed)} checks passed in "
               "earlier attempts are not run again" if progress.passed else "")
    log(f"running the ember exec suite on Linux {kernel.release} inside an emulated-SVM L1 "
        f"(QEMU TCG, timeout {o.timeout} s){resumed}")
    r, elapsed, l1 = run_l1(o, kernel, l1_initramfs, work, logs,
                            watchdog.rules("l1", execsuite.MONITOR))
    this_attempt = execsuite.parse(consoles.read(logs.l2_console))
    report, problems = execsuite.merge(this_attempt, progress)
    if o.exec_resume:
        try:
            execsuite.save_progress(Path(o.exec_resume), execsuite.after(progress, this_attempt))
        except OSError as e:
            problems.append(f"could not write --exec-resume {o.exec_resume}: {e}")
    if report.summary and not report.consistent():
        problems.append(f"the suite's summary '{report.summary}' does not count its "
                        f"{len(report.results)} PASS and FAIL lines")
    verdict = execsuite.verdict(flake.classify(flake.Boot(
        "l1", execsuite.MONITOR, r.status, r.stop, l1, consoles.ember_status(l1), report.summary,
        host_failed=len(problems), host_total=2)), report)
    if report.text:
        print(report.text)
    for f in report.flakes:
        print(f"{retry.PREFIX}ember exec suite: {f}; tried again in the same L1", file=sys.stderr,
              flush=True)
    problems = list(verdict.problems) + problems
    if o.verbose or problems:
        show_log(logs.l1_console, "the L1's console", o.verbose or not report.summary)
    timing = summary.timing(elapsed, execsuite.MONITOR, consoles.l1_up(l1), consoles.monitor_ran(l1))
    if report.values:
        log(f"exec: {execsuite.measurements(report)}")
    return verdict_status(o, logs, timing, problems, verdict.status,
                          " (l2-console.log: the suite's report)")


def io_bench(o: options.Options, kernel: shell.Kernel, work: Path, logs: Logs) -> int:
    """--io-bench: one L1 runs the monitor on the guest of tests/boot/l2-io (fio, then iperf3
    both ways), whose results are on the guest's console; they are printed as io-result: lines."""
    l2 = iobench.guest_initramfs(work, kernel)
    l1_initramfs = iobench.l1_initramfs(work, kernel, o.monitor, o.ember, l2, o.vhost)
    peer = "QEMU (q35)" if o.monitor == "qemu" else "ember"
    log(f"running fio and iperf3 in Linux {kernel.release} under {peer} inside an emulated-SVM L1 "
        f"(QEMU TCG, timeout {o.timeout} s)")
    r, elapsed, l1 = run_l1(o, kernel, l1_initramfs, work, logs,
                            watchdog.rules("l1", o.monitor, iobench.DONE))
    logs.l2_console.touch()
    report = iobench.parse(consoles.read(logs.l2_console))
    verdict = iobench.verdict(flake.classify(flake.Boot(
        "l1", o.monitor, r.status, r.stop, l1, consoles.ember_status(l1), report.summary)),
        o.monitor, consoles.ember_status(l1), r.stop is not None, report)
    for line in iobench.lines(report):
        print(line)
    problems = list(verdict.problems) + report.errors
    if o.verbose or problems:
        show_log(logs.l1_console, "the L1's console", o.verbose)
        show_log(logs.l2_console, "the guest's console", o.verbose)
    timing = summary.timing(elapsed, o.monitor, consoles.l1_up(l1), consoles.monitor_ran(l1))
    return verdict_status(o, logs, timing, problems, verdict.status)


def boot(o: options.Options, kernel: shell.Kernel, work: Path,
         progress: execsuite.Progress) -> int:
    logs = Logs(Path(o.cache) / "logs", plan_.variant(o))
    logs.dir.mkdir(parents=True, exist_ok=True)
    for f in (logs.l2_console, logs.ember_log, logs.l1_console, logs.record):
        f.unlink(missing_ok=True)
    if o.exec_suite:
        return exec_suite(o, kernel, work, logs, progress)
    if o.io_bench:
        return io_bench(o, kernel, work, logs)
    imgs = images.make(work) if o.devices else None
    p = plan_.make(o, imgs)
    l2_initramfs = initramfs.guest(work, kernel, p)

    start = time.monotonic()
    if o.mode == "direct":
        run = boot_direct(o, kernel, p, l2_initramfs, logs)
    else:
        run = boot_l1(o, kernel, p, l2_initramfs, work, logs)
    elapsed = time.monotonic() - start

    logs.l2_console.touch()
    report = consoles.guest_report(consoles.read(logs.l2_console))
    ctx = hostchecks.Context(o, p, imgs, report, run.monitor_status, run.record, run.record_error,
                             run.l1_console, run.disk_names)
    results = hostchecks.run(ctx)
    host_failed = sum(1 for _, reason in results if reason is not None)
    guest_summary = consoles.summary(report)
    verdict = flake.classify(flake.Boot(
        o.mode, o.monitor, run.result.status, run.result.stop, run.l1_console, run.monitor_status,
        guest_summary, run.record.exit if run.record else None, host_failed, len(results)))
    return tell(o, p, logs, run, report, results, verdict, elapsed)


def tell(o: options.Options, p: plan_.Plan, logs: Logs, run: Run, report: str,
         results: list[tuple[str, Optional[str]]], verdict: flake.Verdict, elapsed: float) -> int:
    """Prints the guest's report, the host checks and the verdict (the logs when it failed or
    with --verbose), and returns the exit status."""
    host_failed = sum(1 for _, reason in results if reason is not None)
    guest_passed = guest_failed = 0
    m = re.fullmatch(r"([0-9]+) passed, ([0-9]+) failed", consoles.summary(report))
    if m:
        guest_passed, guest_failed = int(m.group(1)), int(m.group(2))
    if report:
        print(report)
    print("host checks after ember exited:")
    for line in hostchecks.lines(results):
        print(line)
    print(f"in all: {guest_passed + len(results) - host_failed} passed, "
          f"{guest_failed + host_failed} failed")
    if o.verbose or verdict.problems:
        if o.mode == "l1":
            show_log(logs.l1_console, "the L1's console", o.verbose)
        else:
            show_log(logs.ember_log, "ember's log", o.verbose)
        if o.verbose or not report:
            show_log(logs.l2_console, "the guest's console", o.verbose)
    timing = summary.timing(elapsed, o.monitor, consoles.l1_up(run.l1_console),
                            consoles.monitor_ran(run.l1_console))
    if o.net_balloon:
        log(f"net: 64 MiB L1 -> guest at {consoles.from_guest(report, 'net-to-guest-mbps')} MB/s, "
            f"guest -> L1 at {consoles.from_guest(report, 'net-from-guest-mbps')} MB/s; balloon of "
            f"{p.balloon_kib // 1024} MiB: ember's VmRSS "
            f"{consoles.l1_rss(run.l1_console, 'balloon-before') or ''} -> "
            f"{consoles.l1_rss(run.l1_console, 'balloon-after') or ''} kB")
    what = plan_.title(o)
    if verdict.problems:
        log(f"{what} FAILED ({timing}): {'; '.join(verdict.problems)}")
        log(f"logs: {logs.dir}/linux-boot-{logs.variant}.*")
        if not o.keep:
            log("rerun with --keep to keep the disk images and initramfs, --verbose for every "
                "console in full")
        return verdict.status
    log(f"{what} passed ({timing})")
    return flake.PASSED


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def run_main(argv: list[str]) -> int:
    o = options.parse(argv)
    if o.help:
        sys.stdout.write(header_comment(ENTRY))
        return 0
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    options.resolve_mode(o, options.hardware_virt(cpuinfo))
    # Before the slow steps: a bad progress file is the caller's error, said at once.
    progress = load_progress(o)
    if o.monitor == "ember" and not (os.path.isfile(o.ember) and os.access(o.ember, os.X_OK)):
        raise Fail(f"no ember binary at {o.ember} (build it, or pass --ember PATH)")
    if o.monitor == "ember" and o.mode == "l1" and initramfs.is_dynamic(o.ember):
        raise Fail(f"{o.ember} is dynamically linked; the L1 initramfs needs the static build "
                   "(EMBER_STATIC=ON, no sanitizer)")
    for spec in o.user_disks:
        path = Path(spec.split(",", 1)[0])
        if not (path.is_file() or path.is_block_device()):
            raise Fail(f"--disk {spec}: {path} is not a regular file or block device on this "
                       "machine")
    packages = ["busybox-static", "cpio", "lz4", "kmod"]
    if o.mode == "l1" or o.monitor == "qemu":
        packages.append("qemu-system-x86")
    if o.exec_suite:
        packages.append("qemu-system-common")  # virtiofsd
    if o.io_bench:
        packages += ["fio", "iperf3"]
    cache = Path(o.cache)
    shell.ensure_packages(packages, cache)
    kernel = shell.linux_prepare(cache)
    work = Path(tempfile.mkdtemp(prefix="ember-linux-boot.", dir=os.environ.get("TMPDIR") or "/tmp"))
    try:
        return boot(o, kernel, work, progress)
    finally:
        if o.keep:
            log(f"kept the scratch directory {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGHUP, _terminated)
    try:
        return run_main(argv)
    except UsageError as e:
        log(f"error: {e}")
        log("see tools/linux-boot --help")
        return e.status
    except Fail as e:
        log(f"error: {e}")
        return e.status
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
