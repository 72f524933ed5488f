"""Running one process with its output in files, a timeout and an optional watch.

The process gets stdin on /dev/null and a process group of its own; when the timeout passes, or
the watch callback returns a reason to stop, the whole group is ended (SIGTERM, then SIGKILL
after `term_grace` seconds; at once with SIGKILL when `term_grace` is None). The wall time runs
from just before the spawn to the reaping, and the maximum RSS and the CPU time are the child's own (wait4).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class Stop:
    """Why the harness ended a process: kind "timeout" or a watch's kind, and in words."""
    kind: str
    message: str


@dataclass
class Result:
    status: Optional[int]  # the exit status (128+N after signal N); None when the harness ended it
    seconds: float
    maxrss_kib: int
    stop: Optional[Stop]
    cpu_s: float = 0.0  # the child's user + system CPU time, all its threads (wait4's rusage)

    @property
    def timed_out(self) -> bool:
        return self.stop is not None


# A watch is called every poll_s seconds with the seconds since the spawn; a Stop ends the run.
Watch = Callable[[float], Optional[Stop]]


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run(cmd: list[str], timeout: float, stdout: Path, stderr: Optional[Path] = None,
        watch: Optional[Watch] = None, poll_s: float = 1.0,
        term_grace: Optional[float] = None) -> Result:
    """Runs cmd with stdout (and stderr, or stderr into the same file when None) in files."""
    stops: list[Stop] = []
    reaped = threading.Event()
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(stdout, "wb"))
        err = files.enter_context(open(stderr, "wb")) if stderr is not None else out
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True)

        def end(stop: Stop) -> None:
            stops.append(stop)
            if term_grace is None:
                _signal_group(p.pid, signal.SIGKILL)
                return
            _signal_group(p.pid, signal.SIGTERM)
            if not reaped.wait(term_grace):
                _signal_group(p.pid, signal.SIGKILL)

        def watcher() -> None:
            deadline = t0 + timeout
            while True:
                left = deadline - time.perf_counter()
                if reaped.wait(max(0.0, min(poll_s, left) if watch else left)):
                    return
                elapsed = time.perf_counter() - t0
                if elapsed >= timeout:
                    end(Stop("timeout", f"timed out after {timeout:g} s"))
                    return
                stop = watch(elapsed) if watch else None
                if stop is not None:
                    end(stop)
                    return

        thread = threading.Thread(target=watcher, daemon=True)
        thread.start()
        try:
            _, wstatus, usage = os.wait4(p.pid, 0)
        except BaseException:
            # Interrupted (Ctrl-C, or the harness's own SIGTERM): the group goes with it.
            _signal_group(p.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p.pid, 0)
            p.returncode = -1
            raise
        finally:
            reaped.set()
        seconds = time.perf_counter() - t0
        thread.join()
        p.returncode = os.waitstatus_to_exitcode(wstatus)
    status = p.returncode if p.returncode >= 0 else 128 - p.returncode
    stop = stops[0] if stops else None
    return Result(None if stop else status, seconds, usage.ru_maxrss, stop,
                  usage.ru_utime + usage.ru_stime)
