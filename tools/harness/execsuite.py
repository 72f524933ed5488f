"""tools/linux-boot --exec-suite: the `ember exec` suite that tests/boot/l1-exec runs inside one
emulated-SVM L1. This module has what the L1 image needs beyond ember and the KVM modules, and
reads the suite's report.

The image: the kernel ember exec boots (the L1's own bzImage, /ember/bzImage), the kernel's
modules directory /lib/modules/<release>/ with modules.dep, modules.builtin, modules.order and
the modules ember exec loads (moddep.EXEC_MODULES and their dependencies), and the script as the L1's monitor
(/ember/monitor) with its arguments (/ember/args); /ember/exec-suite tells tests/boot/l1-init to
make / a tmpfs first. (initramfs.l1_exec adds ember, and virtiofsd with its libraries.)

The report (l1-exec's stdout, on the L1's second serial port): a header `ember exec suite: ...`,
`PASS name` or `FAIL name: why` per check, `FLAKE name: attempt N of 3: why` for each run the
emulated-SVM stack broke and l1-exec tried again, `host: KEY=VALUE` measurements, and
`N passed, M failed`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import moddep
from .output import Fail
from .shell import ROOT, Kernel

SCRIPT = ROOT / "tests/boot/l1-exec"
MONITOR = "l1-exec"  # what l1-init and the verdict call it
VIRTIOFSD = Path("/usr/lib/qemu/virtiofsd")
HEADER = re.compile(r"^ember exec suite: ")
SUMMARY = re.compile(r"^([0-9]+) passed, ([0-9]+) failed$")
RESULT = re.compile(r"^(PASS|FAIL) ([A-Za-z0-9_.-]+)(?:: (.*))?$")
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


def args(kernel_release: str, verbose: bool) -> list[str]:
    """l1-exec's arguments, one per line in /ember/args."""
    return (["--verbose"] if verbose else []) + ["/ember/bzImage", kernel_release]


def files(work: Path, kernel: Kernel, verbose: bool) -> list[tuple[str, str]]:
    """What the L1 image holds for the suite beyond ember and virtiofsd: (SRC, DEST) pairs."""
    (work / "exec-args").write_text("".join(a + "\n" for a in args(kernel.release, verbose)))
    (work / "exec-monitor").write_text("/ember/l1-exec\n")
    (work / "exec-suite").write_text("tools/linux-boot --exec-suite\n")
    return [(str(kernel.bzimage), "/ember/bzImage"), (str(SCRIPT), "/ember/l1-exec"),
            (str(work / "exec-args"), "/ember/args"), (str(work / "exec-monitor"), "/ember/monitor"),
            (str(work / "exec-suite"), "/ember/exec-suite")] + module_files(kernel)


@dataclass
class Report:
    text: str = ""  # from the header to the summary
    results: list[tuple[str, Optional[str]]] = field(default_factory=list)  # (name, why) per check
    flakes: list[str] = field(default_factory=list)  # `name: attempt N of 3: why`
    values: dict[str, str] = field(default_factory=dict)  # the host: lines
    summary: str = ""  # `N passed, M failed`, or '' when the suite did not finish

    @property
    def failed(self) -> list[str]:
        return [name for name, why in self.results if why is not None]

    def consistent(self) -> bool:
        """The summary's counts are the PASS and FAIL lines'."""
        m = SUMMARY.match(self.summary)
        return m is not None and (int(m.group(1)), int(m.group(2))) == (
            len(self.results) - len(self.failed), len(self.failed))


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
    for line in lines[start:]:
        kept.append(line)
        if SUMMARY.match(line):
            r.summary = line
            break
        if m := RESULT.match(line):
            r.results.append((m.group(2), None if m.group(1) == "PASS" else (m.group(3) or "")))
        elif m := FLAKE.match(line):
            r.flakes.append(f"{m.group(1)}: {m.group(2)}")
        elif m := VALUE.match(line):
            r.values[m.group(1)] = m.group(2)
    r.text = "\n".join(kept)
    return r


def measurements(r: Report) -> str:
    """The numbers for the closing note, in one line."""
    v = r.values.get
    return (f"ember exec -- true: {v('exec-true-wall-s', '?')} s of wall time (median of "
            f"{v('exec-true-walls-s', '?')}), the command starting at {v('exec-boot-uptime-s', '?')} s "
            f"of the guest's uptime; 64 MiB read through virtio-fs at {v('virtiofs-read-mbps', '?')} "
            f"MB/s; the suite ran {v('exec-suite-s', '?')} s in the L1")
