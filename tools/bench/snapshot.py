"""The snapshot row (issue 13): how long a restore takes against a cold boot to the same point,
for a 256 MiB and a 2 GiB guest, how long creating the snapshot takes, and the memory file's size.

The point is the test guest's `serial-wait` test, which prints `serial-wait: waiting` and polls
COM1 for a byte. Per size and run:
  - cold boot: the process spawned to that line on its stdout;
  - snapshot: the same boot with an API socket, paused there, PUT /snapshot/create timed as the
    request's wall time; the memory file's length and the bytes it takes on disk;
  - restore: `ember run --restore --mem --resume` with a byte waiting on stdin, spawned to the
    guest's next line (`serial-wait: got`: it runs again and has read the byte), the same kind
    of point as the cold boot's; the run must then finish (the guest reports and powers off).
    Also the time ember itself says it took to build the machine and put the state back (its
    `restore: ... in X ms` line).
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.apiclient import ApiClient, ApiError

SIZES = ("256M", "2G")
WAITING = b"serial-wait: waiting"
GOT = b"serial-wait: got"
RESTORED_RE = re.compile(r"restore: .* in ([0-9.]+) ms")


@dataclass
class Sample:
    cold_ms: float
    create_ms: float
    restore_ms: float  # spawn to the guest's line after the restore
    restore_in_ms: float  # ember's own measure
    file_mib: float  # the memory file's length
    disk_mib: float  # what it takes on disk (zero pages are holes)


def _wait_socket(path: Path, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if path.is_socket():
            return True
        time.sleep(0.005)
    return False


def measure(ember: Path, guest: Path, memory: str, scratch: Path, timeout: float) -> Sample:
    """One run at MEMORY; raises RuntimeError naming what went wrong."""
    sock, state, mem = scratch / f"snap-{memory}.sock", scratch / f"snap-{memory}.state", \
        scratch / f"snap-{memory}.mem"
    for p in (sock, state, mem):
        p.unlink(missing_ok=True)
    cmd = [str(ember), "run", "--kernel", str(guest), "--memory", memory, "--log-level", "warn",
           "--cmdline", "tests=serial-wait serialwait.ms=60000", "--api-sock", str(sock)]
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        seen = b""
        while WAITING not in seen:
            chunk = p.stdout.read1(4096) if p.stdout else b""
            if not chunk or time.monotonic() > deadline:
                raise RuntimeError(f"{memory}: the guest did not reach serial-wait "
                                   f"({seen[-200:].decode(errors='replace')!r})")
            seen += chunk
        cold_ms = (time.perf_counter() - t0) * 1000
        if not _wait_socket(sock, deadline):
            raise RuntimeError(f"{memory}: no API socket at {sock}")
        api = ApiClient(str(sock), timeout=timeout)
        try:
            api.patch("/vm", {"state": "Paused"})
            t1 = time.perf_counter()
            api.put("/snapshot/create", {"snapshot_type": "Full", "snapshot_path": str(state),
                                         "mem_file_path": str(mem)})
            create_ms = (time.perf_counter() - t1) * 1000
        except ApiError as e:
            raise RuntimeError(f"{memory}: {e}") from e
    finally:
        p.kill()
        p.communicate()
    st = os.stat(mem)
    restore_ms, out, err, status = _restore(ember, state, mem, timeout)
    m = RESTORED_RE.search(err)
    if status != 0 or m is None or restore_ms is None or b"1 passed, 0 failed" not in out:
        raise RuntimeError(f"{memory}: the restore exited {status}: {err.strip()[-300:]}")
    for f in (state, mem):
        f.unlink(missing_ok=True)
    return Sample(cold_ms, create_ms, restore_ms, float(m.group(1)), st.st_size / 2**20,
                  st.st_blocks * 512 / 2**20)


def _restore(ember: Path, state: Path, mem: Path,
             timeout: float) -> tuple[Optional[float], bytes, str, int]:
    """`ember run --restore` with a byte on stdin: the milliseconds from spawn to the guest's
    line after the restore (None if it never came), its stdout and stderr, its exit status. Killed
    after TIMEOUT seconds."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([str(ember), "run", "--restore", str(state), "--mem", str(mem),
                              "--resume"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=err)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        try:
            assert p.stdin and p.stdout
            p.stdin.write(b"x")
            p.stdin.close()
            out, running_ms = b"", None
            while chunk := p.stdout.read1(4096):
                out += chunk
                if running_ms is None and GOT in out:
                    running_ms = (time.perf_counter() - t0) * 1000
            status = p.wait()
        finally:
            killer.cancel()
            if p.poll() is None:
                p.kill()
                p.wait()
        err.seek(0)
        return running_ms, out, err.read().decode(errors="replace"), status


def run(ember: Path, guest: Path, scratch: Path, runs: int, timeout: float, add, fail,
        log) -> None:
    """RUNS samples per size, interleaved; ADD(key, value) each figure; FAIL(what) a run that
    went wrong."""
    for run_no in range(1, runs + 1):
        for size in SIZES:
            try:
                s = measure(ember, guest, size, scratch, timeout)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                fail(f"snapshot {size}, run {run_no}: {e}")
                continue
            for row, value in (("cold-boot", s.cold_ms), ("snapshot-create", s.create_ms),
                               ("restore", s.restore_ms), ("restore-in", s.restore_in_ms),
                               ("mem-file", s.file_mib), ("mem-disk", s.disk_mib)):
                add((row, "ember", size, False, 0), value)
            log(f"  snapshot {size:4} cold boot {s.cold_ms:6.1f} ms, create {s.create_ms:6.1f} ms, "
                f"restore {s.restore_ms:5.1f} ms ({s.restore_in_ms:.2f} ms in ember), memory "
                f"file {s.file_mib:.0f} MiB ({s.disk_mib:.1f} MiB on disk)")


def rows_of(st) -> list[list[str]]:
    """The table's rows: ST(row, mon, face, ioeventfd, depth) gives a figure's stats."""
    out = []
    for row, label, unit, note in (
            ("cold-boot", "cold boot to serial-wait", "ms", "process spawn to the guest's line"),
            ("restore", "restore to running", "ms",
             "process spawn to the guest's next line (it read a byte)"),
            ("restore-in", "restore in ember", "ms", "Machine::create to the state put back"),
            ("snapshot-create", "snapshot create", "ms", "PUT /snapshot/create, paused"),
            ("mem-file", "memory file", "MiB", "length"),
            ("mem-disk", "memory file on disk", "MiB", "zero pages are holes")):
        for size in SIZES:
            s = st(row, "ember", size, False, 0)
            if s:
                out.append([label, "ember", size, "", "", f"{s['median']:.1f}", f"{s['min']:.1f}",
                            f"{s['max']:.1f}", unit, str(s["runs"]), note])
    return out


def goal(med) -> Optional[tuple[bool, str]]:
    """Restore under 10 ms on /dev/kvm for any memory size: ember's own measure, worst size."""
    figures = [(size, med("restore-in", "ember", size, False, 0)) for size in SIZES]
    figures = [(size, v) for size, v in figures if v is not None]
    if not figures:
        return None
    cold = {size: med("cold-boot", "ember", size, False, 0) for size in SIZES}
    running = {size: med("restore", "ember", size, False, 0) for size in SIZES}
    text = "; ".join(
        f"{size}: {v:.2f} ms"
        + (f", spawn to running {running[size]:.1f} ms" if running[size] is not None else "")
        + f" (cold boot to the same point {cold[size] or 0:.1f} ms)" for size, v in figures)
    return max(v for _, v in figures) < 10, text
