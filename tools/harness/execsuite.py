"""tools/linux-boot --exec-suite: the `ember exec` suite that tests/boot/l1-exec runs inside one
emulated-SVM L1. This module has what the L1 image needs beyond ember and the KVM modules, and
reads the suite's report.

The image: the kernel ember exec boots (the L1's own bzImage, /ember/bzImage), the kernel's
modules directory /lib/modules/<release>/ with modules.dep, modules.builtin, modules.order and
the modules ember exec loads (moddep.EXEC_MODULES and their dependencies), and the script as the L1's monitor
(/ember/monitor) with its arguments (/ember/args); /ember/exec-suite tells tests/boot/l1-init to
make / a tmpfs first. (initramfs.l1_exec adds ember, and virtiofsd with its libraries.)

The report (l1-exec's stdout, on the L1's second serial port): a header `ember exec suite: ...`,
`PASS name` or `FAIL name: why` per check, `SKIP name: ...` for a check passed in an earlier
attempt (below), `FLAKE name: attempt N of 3: why` for each run the emulated-SVM stack broke and
l1-exec tried again, `host: KEY=VALUE` measurements (a case's just before its first PASS line),
and `N passed, M failed` (N with the SKIP lines).

Resuming (tools/linux-boot --exec-resume FILE, which tests/boot/retry-nested-flake gives every
attempt of an --exec-suite run): FILE, the Progress of the attempts so far (JSON), says which
checks passed in which attempt with their case's `host:` values. The next L1 gets them as
l1-exec's --skip and --value arguments, so it runs only the cases not passed yet (an L1 that
froze after five cases does not run those five again), and `merge` puts each SKIP line back as
`PASS name (attempt N)` with its values, so the report is the whole suite's. A FAIL is never
carried: a failed check makes the run fail (`verdict`), however the L1 ended after it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import flake, moddep
from .output import Fail
from .shell import ROOT, Kernel

SCRIPT = ROOT / "tests/boot/l1-exec"
MONITOR = "l1-exec"  # what l1-init and the verdict call it
VIRTIOFSD = Path("/usr/lib/qemu/virtiofsd")
HEADER = re.compile(r"^ember exec suite: ")
SUMMARY = re.compile(r"^([0-9]+) passed, ([0-9]+) failed$")
NAME = re.compile(r"[A-Za-z0-9_.-]+")
# ` (attempt N)`: a check carried from an earlier attempt in a merged report.
RESULT = re.compile(r"^(PASS|FAIL) ([A-Za-z0-9_.-]+)(?: \(attempt ([0-9]+)\))?(?:: (.*))?$")
SKIP = re.compile(r"^SKIP ([A-Za-z0-9_.-]+)(?:: .*)?$")
FLAKE = re.compile(r"^FLAKE ([A-Za-z0-9_.-]+): (.*)$")
VALUE = re.compile(r"^host: ([A-Za-z0-9_.-]+)=(.*)$")


def module_files(kernel: Kernel) -> list[tuple[str, str]]:
    """/lib/modules/<release>/: the indexes and the modules ember exec loads, with their
    dependencies, from the unpacked package (kernel.modules is its kernel/ directory)."""
    tree = kernel.modules.parent
    dest = f"/lib/modules/{kernel.release}"
    try:
        paths = moddep.closure((tree / "modules.dep").read_text(),
                               (tree / "modules.builtin").read_text())
    except (OSError, moddep.ModDepError) as e:
        raise Fail(f"the modules of {kernel.release} in {tree}: {e}")
    names = list(moddep.INDEXES) + [n for n in moddep.OPTIONAL_INDEXES if (tree / n).exists()]
    return [(str(tree / n), f"{dest}/{n}") for n in names + paths]


@dataclass(frozen=True)
class Passed:
    """A check passed in an earlier attempt: which one, and its case's `host:` values."""
    attempt: int
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Progress:
    """The attempts of a resumed suite so far (--exec-resume's file)."""
    attempts: int = 0  # the runs recorded
    passed: dict[str, Passed] = field(default_factory=dict)  # check -> when it passed

    def values(self) -> dict[str, str]:
        """Every carried `host:` value (l1-exec's --value arguments)."""
        out: dict[str, str] = {}
        for p in self.passed.values():
            out.update(p.values)
        return out


class ProgressError(Exception):
    pass


def _progress(data) -> Progress:
    if not isinstance(data, dict) or not isinstance(data.get("attempts"), int) \
            or data["attempts"] < 0 or not isinstance(data.get("passed"), dict):
        raise ProgressError("not an exec suite's progress (want {\"attempts\": N, \"passed\": {...}})")
    out = Progress(data["attempts"])
    for name, p in data["passed"].items():
        if not NAME.fullmatch(name):
            raise ProgressError(f"'{name}' is not a check's name")
        if not isinstance(p, dict) or not isinstance(p.get("attempt"), int) \
                or not 1 <= p["attempt"] <= out.attempts or not isinstance(p.get("values"), dict):
            raise ProgressError(f"check {name}: want {{\"attempt\": 1..{out.attempts}, \"values\": {{...}}}}")
        for k, v in p["values"].items():
            # One line each in /ember/args, as l1-exec's --value KEY=VALUE.
            if not NAME.fullmatch(k) or not isinstance(v, str) or "\n" in v:
                raise ProgressError(f"check {name}: the value {k!r}={v!r} is not a host: value")
        out.passed[name] = Passed(p["attempt"], dict(p["values"]))
    return out


def load_progress(path: Path) -> Progress:
    """The progress in PATH; none yet (the first attempt) when there is no such file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Progress()
    except OSError as e:
        raise ProgressError(str(e))
    try:
        return _progress(json.loads(text))
    except ValueError as e:
        raise ProgressError(f"not JSON: {e}")


def save_progress(path: Path, progress: Progress) -> None:
    data = {"attempts": progress.attempts,
            "passed": {n: {"attempt": p.attempt, "values": p.values} for n, p in progress.passed.items()}}
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)  # whole or not at all, if the harness is ended while it writes


def args(kernel_release: str, verbose: bool, progress: Optional[Progress] = None) -> list[str]:
    """l1-exec's arguments, one per line in /ember/args: the checks passed in earlier attempts and
    their values, which l1-exec does not run again."""
    out = ["--verbose"] if verbose else []
    if progress is not None:
        for name in progress.passed:
            out += ["--skip", name]
        for k, v in progress.values().items():
            out += ["--value", f"{k}={v}"]
    return out + ["/ember/bzImage", kernel_release]


def files(work: Path, kernel: Kernel, verbose: bool,
          progress: Optional[Progress] = None) -> list[tuple[str, str]]:
    """What the L1 image holds for the suite beyond ember and virtiofsd: (SRC, DEST) pairs."""
    (work / "exec-args").write_text("".join(a + "\n" for a in args(kernel.release, verbose, progress)))
    (work / "exec-monitor").write_text("/ember/l1-exec\n")
    (work / "exec-suite").write_text("tools/linux-boot --exec-suite\n")
    return [(str(kernel.bzimage), "/ember/bzImage"), (str(SCRIPT), "/ember/l1-exec"),
            (str(work / "exec-args"), "/ember/args"), (str(work / "exec-monitor"), "/ember/monitor"),
            (str(work / "exec-suite"), "/ember/exec-suite")] + module_files(kernel)


@dataclass
class Report:
    text: str = ""  # from the header to the summary
    results: list[tuple[str, Optional[str]]] = field(default_factory=list)  # (name, why) per check
    skipped: list[str] = field(default_factory=list)  # the SKIP lines' checks
    earlier: dict[str, int] = field(default_factory=dict)  # `PASS name (attempt N)`: name -> N
    flakes: list[str] = field(default_factory=list)  # `name: attempt N of 3: why`
    values: dict[str, str] = field(default_factory=dict)  # the host: lines
    case_values: dict[str, dict[str, str]] = field(default_factory=dict)  # a PASS's host: lines
    summary: str = ""  # `N passed, M failed`, or '' when the suite did not finish

    @property
    def failed(self) -> list[str]:
        return [name for name, why in self.results if why is not None]

    def consistent(self) -> bool:
        """The summary's counts are the PASS (and SKIP) and FAIL lines'."""
        m = SUMMARY.match(self.summary)
        return m is not None and (int(m.group(1)), int(m.group(2))) == (
            len(self.results) - len(self.failed) + len(self.skipped), len(self.failed))


def parse(console: str) -> Report:
    """The last report on the console (carriage returns already dropped)."""
    start = None
    lines = console.splitlines()
    for i, line in enumerate(lines):
        if HEADER.match(line):
            start = i
    r = Report()
    if start is None:
        return r
    kept = []
    pending: dict[str, str] = {}  # host: values since the last check's line
    for line in lines[start:]:
        kept.append(line)
        if SUMMARY.match(line):
            r.summary = line
            break
        if m := RESULT.match(line):
            name, passed = m.group(2), m.group(1) == "PASS"
            r.results.append((name, None if passed else (m.group(4) or "")))
            if passed and m.group(3):
                r.earlier[name] = int(m.group(3))
            if passed and pending:
                r.case_values[name] = pending
            pending = {}
        elif m := SKIP.match(line):
            r.skipped.append(m.group(1))
            pending = {}
        elif m := FLAKE.match(line):
            r.flakes.append(f"{m.group(1)}: {m.group(2)}")
        elif m := VALUE.match(line):
            r.values[m.group(1)] = m.group(2)
            pending[m.group(1)] = m.group(2)
    r.text = "\n".join(kept)
    return r


def merge(r: Report, progress: Progress) -> tuple[Report, list[str]]:
    """This attempt's report with each SKIP line replaced by the check's earlier PASS (and its
    case's host: values before it): the whole suite's report. The problems: a SKIP of a check no
    earlier attempt passed."""
    lines, problems = [], []
    for line in r.text.splitlines():
        m = SKIP.match(line)
        p = progress.passed.get(m.group(1)) if m else None
        if m and p is None:
            problems.append(f"l1-exec skipped {m.group(1)}, which no earlier attempt passed")
        if p is None:
            lines.append(line)
            continue
        lines += [f"host: {k}={v}" for k, v in p.values.items()]
        lines.append(f"PASS {m.group(1)} (attempt {p.attempt})")
    return parse("\n".join(lines)), problems


def after(progress: Progress, r: Report) -> Progress:
    """The progress once this attempt's report R (not merged) is counted: its PASS checks added
    with their values, the carried ones kept (also those it did not reach), a FAIL dropped."""
    attempt = progress.attempts + 1
    passed = dict(progress.passed)
    for name, why in r.results:
        if why is None:
            passed[name] = Passed(attempt, r.case_values.get(name, {}))
        else:
            passed.pop(name, None)
    return Progress(attempt, passed)


def verdict(v: flake.Verdict, r: Report) -> flake.Verdict:
    """The run's verdict given its report: a flake (the L1 stalled, froze or crashed) after a
    check had failed is a failure, so that no retry, which runs only the checks not passed yet,
    can try that check away. A real failure is final."""
    if v.status not in flake.FLAKES or not r.failed:
        return v
    return flake.Verdict("failed", flake.FAILED, v.problems + (
        f"{', '.join(r.failed)} had failed before that: a failed check is final (the suite is "
        "not tried again)",))


def measurements(r: Report) -> str:
    """The numbers for the closing note, in one line ('?' for a value no attempt measured), each
    carried one with its attempt."""
    v = r.values.get

    def at(check: str) -> str:
        return f", in attempt {r.earlier[check]}" if check in r.earlier else ""

    line = (f"ember exec -- true: {v('exec-true-wall-s', '?')} s of wall time (median of "
            f"{v('exec-true-walls-s', '?')}{at('exec-true')}), the command starting at "
            f"{v('exec-boot-uptime-s', '?')} s of the guest's uptime{at('exec-uptime')}; 64 MiB "
            f"read through virtio-fs at {v('virtiofs-read-mbps', '?')} MB/s{at('virtiofs-read')}; "
            f"the suite ran {v('exec-suite-s', '?')} s in the L1")
    if r.earlier:
        line += (f" of the last attempt; {len(r.earlier)} checks passed in earlier ones "
                 f"({', '.join(f'{c} in attempt {n}' for n, c in _by_attempt(r.earlier))})")
    return line


def _by_attempt(earlier: dict[str, int]) -> list[tuple[int, int]]:
    """(attempt, how many checks) for each earlier attempt, in order."""
    counts: dict[int, int] = {}
    for n in earlier.values():
        counts[n] = counts.get(n, 0) + 1
    return sorted(counts.items())
