"""What the consoles of a boot say, read from their text (carriage returns dropped).

The guest's console (tests/boot/l2-init) holds its report: a header line
`ember boot test: Linux ..., /init at X s of uptime, ...`, one `PASS name` or `FAIL name: why`
per check, `host: KEY=VALUE` lines for the host's checks, and `N passed, M failed`.
The L1's console (tests/boot/l1-init) has lines starting `linux-boot-l1: `: the L1's disks, when
it was up, the monitor's exit status and run time, ember's run record, the watchdog's verdict
and, from tests/boot/l1-net, ember's VmRSS.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

L1 = "linux-boot-l1: "
REPORT_START = re.compile(r"^ember boot test: ")
SUMMARY = re.compile(r"^[0-9]+ passed, [0-9]+ failed$")
# The L1's own kernel failing under the monitor (tools/linux-boot's nested-crash flake).
# A panic, a soft lockup, or an RCU stall (a CPU of the L1 stuck, seen with QEMU as the guest's
# monitor under fio as well as with ember: the emulated SVM's, not the monitor's).
L1_FAULT = re.compile(r"Kernel panic - not syncing: .*|BUG: soft lockup - .*"
                      r"|rcu: INFO: rcu_\w+ detected stalls on CPUs/tasks:")


def read(path: Path) -> str:
    """The file's text without carriage returns; empty when there is none."""
    try:
        return path.read_bytes().decode(errors="replace").replace("\r", "")
    except FileNotFoundError:
        return ""


def guest_report(text: str) -> str:
    """The lines from each header line to the next summary line (as `sed -n '/A/,/B/p'`)."""
    out, inside = [], False
    for line in text.splitlines():
        if not inside and REPORT_START.match(line):
            inside = True
            out.append(line)
        elif inside:
            out.append(line)
            if SUMMARY.match(line):
                inside = False
    return "\n".join(out)


def summary(report: str) -> str:
    """The report's last `N passed, M failed` line, or ''."""
    found = [line for line in report.splitlines() if SUMMARY.match(line)]
    return found[-1] if found else ""


def _last(pattern: str, text: str) -> Optional[str]:
    found = re.findall(pattern, text, re.M)
    return found[-1] if found else None


def from_guest(report: str, key: str) -> str:
    """The value of the report's last `host: KEY=VALUE` line, or ''."""
    return _last(rf"^host: {re.escape(key)}=(.*)$", report) or ""


def init_uptime(text: str) -> Optional[float]:
    """The guest kernel's uptime when its /init started, from the report's header."""
    v = _last(r"/init at ([0-9.]+) s of uptime", text)
    return float(v) if v else None


def ember_status(l1: str) -> Optional[int]:
    """The monitor's exit status as l1-init reported it (100+ for a failure of the L1 itself)."""
    v = _last(rf"^{L1}ember-status=([0-9]+)$", l1)
    return int(v) if v is not None else None


def l1_disk(l1: str, index: int) -> Optional[str]:
    """The L1's device (/dev/vdX) of the harness's disk number `index` (serial ember-l1-diskN)."""
    return _last(rf"^{L1}disk ember-l1-disk{index} is (/dev/[a-z0-9]*) .*$", l1)


def l1_up(l1: str) -> Optional[str]:
    return _last(rf"^{L1}L1 up at ([0-9.]*) s.*$", l1)


def monitor_ran(l1: str) -> Optional[str]:
    """How long the monitor ran in the L1, in seconds of its uptime (as printed, e.g. '28.91')."""
    return _last(rf"^{L1}[a-z0-9_-]* ran for ([0-9.]*) s.*$", l1)


def l1_rss(l1: str, name: str) -> Optional[int]:
    """ember's VmRSS in kB as the L1 read it at the guest's request NAME (tests/boot/l1-net)."""
    v = _last(rf"^{L1}net: ember VmRSS at {re.escape(name)}: ([0-9]*) kB\b", l1)
    return int(v) if v else None


def restore_ms(l1: str) -> Optional[float]:
    """How long the restored ember's restore took (its log line `restore: ... in N ms`, on the
    L1's console: tools/linux-boot --snapshot)."""
    v = _last(r"ember: info: restore: .* in ([0-9.]+) ms\b", l1)
    return float(v) if v else None


def watchdog_stalled(l1: str) -> bool:
    """The L1's watchdog found the guest's console silent and ended the monitor."""
    return re.search(rf"^{L1}watchdog: stalled", l1, re.M) is not None


def l1_fault(l1: str) -> Optional[str]:
    """The first panic, soft lockup or RCU stall of the L1's kernel, as it said it."""
    m = L1_FAULT.search(l1)
    return m.group(0) if m else None


def ember_report(l1: str) -> Optional[str]:
    """ember's run record as l1-init printed it, one line of JSON after `ember-report=`."""
    return _last(rf"^{L1}ember-report=(.*)$", l1)
