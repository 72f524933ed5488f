"""The verdict of one boot, and which failures are flakes of the emulated-SVM L1.

A pure function of what the run left: where it ran, how the process ended, the consoles, the
monitor's exit status and run record, the guest's summary and the host checks. The exit status
of tools/linux-boot is the verdict's: 0 passed, 1 failed, 3 stalled, 4 crashed in the L1
(tests/boot/README.md, "Flakes in the emulated-SVM L1"); retry.py tries 3 and 4 again.

The kinds, in the order they are decided:
  l1-fault        the L1's own kernel panicked or locked up (seen once each: "corrupted stack end
                  detected inside scheduler" in ember's vCPU thread; a vCPU thread spinning in
                  KVM_RUN for minutes). A user process in the L1 can cause neither.     exit 4
  failed          the harness ended the run after the guest's report: the guest's power-off or
                  reset did not end the monitor.                                           exit 1
  stall           the harness ended the run before the guest finished its report: the timeout,
                  or (directly on /dev/kvm) the guest's console silent for 90 s.           exit 3
  l1-frozen       the harness ended the L1 before the guest finished its report because neither
                  of the L1's consoles had grown for 240 s (watchdog.L1_FROZEN_S): the L1
                  itself froze, its own watchdog with it (seen in CI under the exec suite). exit 3
  watchdog-stall  the L1's watchdog (tests/boot/l1-init) found the guest's console silent for
                  90 s and ended the monitor.                                              exit 3
  l1-reset        QEMU exited with status 0 before the L1 reported the monitor's status: with
                  -no-reboot, a triple fault or reset of the L1 kernel ends QEMU that way (seen
                  2026-12-01 in --l1 --no-devices --verbose).                              exit 4
  failed          QEMU failed otherwise without that report, or the monitor exited non-zero...
  vcpu-crash      ...except ember's status 3 in the L1: the nested guest's vCPU crashed (triple
                  fault, KVM internal error), seen under heavy virtio-net traffic there.  exit 4
then the guest's report and the host checks, which make a run that got this far `failed`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from . import consoles
from .proc import Stop
from .record import Exit

PASSED, FAILED, STALLED, NESTED_CRASH = 0, 1, 3, 4
# What retry.py says of each flake status.
FLAKES = {STALLED: "the boot stalled before the guest finished its report",
          NESTED_CRASH: "the nested guest or the L1 kernel crashed"}


@dataclass(frozen=True)
class Boot:
    mode: str  # l1 or direct
    monitor: str  # ember or qemu
    status: Optional[int]  # the process's exit status (QEMU's with --l1); None if the harness ended it
    stop: Optional[Stop]  # why the harness ended it
    l1_console: str  # the L1's console text ('' directly)
    monitor_status: Optional[int]  # ember's (or QEMU's) exit status; in the L1 as l1-init said it
    summary: str  # the guest's `N passed, M failed`, or ''
    exit: Optional[Exit] = None  # the run record's exit, when there is one
    host_failed: int = 0
    host_total: int = 0


@dataclass(frozen=True)
class Verdict:
    kind: str
    status: int
    problems: tuple[str, ...]


def _ending(b: Boot) -> tuple[str, int, list[str]]:
    """How the run ended, before looking at the guest's report and the host checks."""
    l1 = b.mode == "l1"
    fault = consoles.l1_fault(b.l1_console) if l1 else None
    if fault:
        return "l1-fault", NESTED_CRASH, [f"the L1 kernel failed under the monitor ({fault})"]
    if b.stop is not None:
        if b.stop.kind == "timeout" and b.summary:
            return "failed", FAILED, [f"{b.stop.message}: the guest printed its report but "
                                      f"{b.monitor} did not exit (the guest's power-off or reset "
                                      "did not end it)"]
        if b.stop.kind == "no-exit" or b.summary:
            return "failed", FAILED, [b.stop.message]
        if b.stop.kind == "silence":
            return "stall", STALLED, [f"stalled: {b.stop.message} and the harness ended {b.monitor}"]
        if b.stop.kind == "l1-frozen":
            return "l1-frozen", STALLED, [f"stalled: {b.stop.message}, and the harness ended its "
                                          "QEMU"]
        return "stall", STALLED, [b.stop.message]
    if l1 and consoles.watchdog_stalled(b.l1_console):
        return "watchdog-stall", STALLED, ["stalled: the guest's console was silent for 90 s and "
                                           "the L1's watchdog ended ember"]
    if b.monitor_status is None:
        if l1 and b.status == 0:
            return "l1-reset", NESTED_CRASH, [
                "the L1 did not report ember's exit status and QEMU exited with status 0: the L1 "
                "kernel reset or triple-faulted (-no-reboot)"]
        return "failed", FAILED, [f"the L1 did not report ember's exit status (QEMU status {b.status})"]
    if b.monitor_status != 0:
        what = f"{b.monitor} exited with status {b.monitor_status}"
        if b.exit is not None and b.exit.reason == "vcpu-crash":
            at = f" at rip {b.exit.rip}" if b.exit.rip else ""
            what += f" ({b.exit.exit_reason} on vCPU {b.exit.vcpu}{at})"
        elif b.exit is not None:
            what += f" ({b.exit.reason}: {b.exit.message})"
        if l1 and b.monitor == "ember" and b.monitor_status == 3:
            return "vcpu-crash", NESTED_CRASH, [what]
        return "failed", FAILED, [what]
    return "passed", PASSED, []


def classify(b: Boot) -> Verdict:
    kind, status, problems = _ending(b)
    if not b.summary:
        problems.append("the guest printed no report")
    elif not re.fullmatch(r"[1-9][0-9]* passed, 0 failed", b.summary):
        problems.append(f"the guest reported: {b.summary}")
    if b.host_failed:
        problems.append(f"{b.host_failed} of {b.host_total} host checks failed")
    if problems and status == PASSED:
        kind, status = "failed", FAILED
    return Verdict(kind, status, tuple(problems))
