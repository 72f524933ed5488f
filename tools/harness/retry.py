"""Boots tried again after a flake of the emulated-SVM L1 (flake.FLAKES: exit status 3, the boot
stalled; 4, the nested guest or the L1's kernel crashed), up to three attempts in all; any other
failure, and a flake on the last attempt, is final. Every flake is reported on stderr in a line
that starts `retry-nested-flake: ` (tools/test lists those lines from ctest's log), so that a
retry never hides that it happened.

`python3 -m harness.retry ARGS...` is tests/boot/retry-nested-flake: it runs tools/linux-boot
ARGS and keeps each flaked run's logs beside the last run's as CACHE/logs/*.flake-N (N: the
attempt). An --exec-suite run is resumed rather than repeated: every attempt gets
--exec-resume FILE (a file of this series' own), so a retry runs only the checks no attempt has
passed yet and reports the others as passed in theirs (harness.execsuite). tools/bench uses
`attempts` for its Linux row.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from . import execsuite
from .flake import FLAKES
from .shell import ROOT

ATTEMPTS = 3
PREFIX = "retry-nested-flake: "


def attempts(run: Callable[[int], int], on_flake: Callable[[int, int], None],
             tries: int = ATTEMPTS) -> tuple[int, list[str]]:
    """Calls run(attempt) until it returns a status that is not a flake's, or `tries` times.
    on_flake(attempt, status) is called for each flake that is tried again. Returns the last
    status and a description of each flake retried."""
    flakes = []
    attempt = 1
    while True:
        status = run(attempt)
        if status not in FLAKES or attempt == tries:
            return status, flakes
        flakes.append(f"attempt {attempt}: {FLAKES[status]}")
        on_flake(attempt, status)
        attempt += 1


def cache_of(args: list[str]) -> Optional[str]:
    """The --cache directory of tools/linux-boot's arguments, if given."""
    cache = None
    for i, a in enumerate(args):
        if a == "--cache":
            cache = args[i + 1] if i + 1 < len(args) else ""
        elif a.startswith("--cache="):
            cache = a.split("=", 1)[1]
    return cache


def with_resume(args: list[str], progress: Path) -> list[str]:
    """tools/linux-boot's arguments for every attempt: an --exec-suite run resumed through
    PROGRESS, unless the caller gave an --exec-resume of its own (then theirs)."""
    if "--exec-suite" not in args or any(a == "--exec-resume" or a.startswith("--exec-resume=")
                                         for a in args):
        return args
    return [*args, "--exec-resume", str(progress)]


def resumed_note(progress: Path) -> str:
    """What the next attempt of an --exec-suite run skips, for the flake's line."""
    try:
        p = execsuite.load_progress(progress)
    except execsuite.ProgressError:
        return ""
    return (f"; the {len(p.passed)} checks passed so far are not run again" if p.passed else "")


def keep_logs(logs: Path, since: Path, attempt: int) -> None:
    """Copies the logs written since the marker file `since` to *.flake-ATTEMPT."""
    if not logs.is_dir():
        return
    marker = since.stat().st_mtime_ns
    for f in sorted(logs.iterdir()):
        if f.is_file() and ".flake-" not in f.name and f.stat().st_mtime_ns >= marker:
            shutil.copy2(f, f.with_name(f"{f.name}.flake-{attempt}"))


def main(argv: list[str]) -> int:
    linux_boot = ROOT / "tools/linux-boot"
    cache = cache_of(argv)
    with tempfile.NamedTemporaryFile(prefix="retry-nested-flake.") as marker, \
            tempfile.TemporaryDirectory(prefix="retry-nested-flake.") as state:
        progress = Path(state) / "exec-progress.json"
        args = with_resume(argv, progress)

        def run(attempt: int) -> int:
            os.utime(marker.name)
            return subprocess.call([str(linux_boot), *args])

        def on_flake(attempt: int, status: int) -> None:
            if cache:
                keep_logs(Path(cache) / "logs", Path(marker.name), attempt)
            resumed = resumed_note(progress) if args != argv else ""
            print(f"{PREFIX}{FLAKES[status]} (linux-boot exit {status}, attempt {attempt} of "
                  f"{ATTEMPTS}); retrying{resumed}", file=sys.stderr, flush=True)

        status, flakes = attempts(run, on_flake)
    if status == 0 and flakes:
        print(f"{PREFIX}passed on attempt {len(flakes) + 1} after {len(flakes)} flake(s) in the "
              f"emulated-SVM L1 ({'; '.join(flakes)}; their logs: {cache or 'the cache'}/logs/"
              "*.flake-N)", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
