"""The host's watch over a boot's console logs while the monitor (or the L1's QEMU) runs: it ends
the run as soon as its outcome is known instead of at the timeout.

- In the L1, a panic, soft lockup or RCU stall of the L1's kernel (consoles.L1_FAULT): 10 s later, time for
  the kernel to print its backtrace. A panic reboots the L1 at once (panic=-1, which -no-reboot
  turns into QEMU's exit); a soft lockup would run on until the timeout.
- The guest printed its report (`N passed, M failed`) but the monitor has not exited 60 s later:
  its power-off or reset did not end the monitor.
- Directly on /dev/kvm, the guest's console silent for 90 s. In the L1, tests/boot/l1-init has
  that watchdog, which also reports the L1's state, so the host leaves it to the L1.
- In the L1, neither console grown for L1_FROZEN_S (240 s): the L1 itself froze, so its own
  watchdog cannot speak (seen in CI: an exec suite's whole L1 silent for 7 minutes until the
  timeout). No L1 mode is that quiet while it works: the boots' L1 watchdog speaks after 90 s of
  the guest's silence (and ember's debug log is on the L1's console), --io-bench's guest prints
  each figure within seconds, and tests/boot/l1-exec prints a line on the L1's console as each
  `ember exec` run starts, each run bounded at 150 s (its --timeout of 90 s, then a kill 60 s
  later), with a few seconds of its case's own work around it. The quiet start before the first
  line (the L1's kernel boots with `quiet`, l1-init loads its modules) takes seconds.

The rules are data and `update` is a function of the texts and the time, so they are tested
without a process; `ConsoleWatch` is what proc.run calls while the run lasts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from . import consoles
from .proc import Stop


@dataclass(frozen=True)
class Silence:
    """Stop when `console` has not grown for `seconds`."""
    console: str
    seconds: float
    kind: str
    message: str


@dataclass(frozen=True)
class After:
    """Stop `grace` seconds after `pattern` first appears on `console` ({match} in the
    message is what matched)."""
    console: str
    pattern: re.Pattern
    grace: float
    kind: str
    message: str


@dataclass(frozen=True)
class AllSilent:
    """Stop when none of `consoles` has grown for `seconds`."""
    consoles: tuple[str, ...]
    seconds: float
    kind: str
    message: str


Rule = Union[Silence, After, AllSilent]

# Safely above the longest quiet phase of a working L1 (above): 150 s for one exec run, 90 s of
# the guest's silence plus the L1 watchdog's 5 s report for the boots.
L1_FROZEN_S = 240


def rules(mode: str, monitor: str, report_end: Optional[re.Pattern] = None,
          l1_frozen_s: float = L1_FROZEN_S) -> list[Rule]:
    """REPORT_END: the guest's last line (default the boot test's `N passed, M failed`);
    L1_FROZEN_S: how long both of the L1's consoles may stay silent (in the L1)."""
    out: list[Rule] = []
    if mode == "l1":
        out.append(After("l1", consoles.L1_FAULT, 10, "l1-fault", "the L1 kernel failed ({match})"))
        out.append(AllSilent(("l1", "l2"), l1_frozen_s, "l1-frozen",
                             f"the L1 froze: neither of its consoles grew for {l1_frozen_s:g} s"))
    end = report_end or re.compile(consoles.SUMMARY.pattern, re.M)
    out.append(After("l2", end, 60, "no-exit",
                     f"the guest printed its report but {monitor} did not exit within 60 s of it "
                     "(the guest's power-off or reset did not end it)"))
    if mode != "l1":
        out.append(Silence("l2", 90, "silence", "the guest's console was silent for 90 s"))
    return out


class Watch:
    """The state of the rules over a run: when each console last grew, when each pattern was
    first seen."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.length: dict[str, int] = {}
        self.grew_at: dict[str, float] = {}
        self.seen_at: dict[int, tuple[float, str]] = {}

    def update(self, elapsed: float, texts: dict[str, str]) -> Optional[Stop]:
        for name, text in texts.items():
            if len(text) != self.length.get(name, 0) or name not in self.grew_at:
                self.length[name] = len(text)
                self.grew_at[name] = elapsed
        for i, rule in enumerate(self.rules):
            if isinstance(rule, Silence):
                if elapsed - self.grew_at.get(rule.console, elapsed) >= rule.seconds:
                    return Stop(rule.kind, rule.message)
                continue
            if isinstance(rule, AllSilent):
                # A console never read counts as growing now: the rule needs all of them seen.
                last = max(self.grew_at.get(c, elapsed) for c in rule.consoles)
                if elapsed - last >= rule.seconds:
                    return Stop(rule.kind, rule.message)
                continue
            text = texts.get(rule.console, "")
            if i not in self.seen_at:
                m = rule.pattern.search(text)
                if m:
                    self.seen_at[i] = (elapsed, m.group(0))
            if i in self.seen_at and elapsed - self.seen_at[i][0] >= rule.grace:
                return Stop(rule.kind, rule.message.replace("{match}", self.seen_at[i][1]))
        return None


class ConsoleWatch:
    """proc.run's watch: reads the console files at each call and applies the rules."""

    def __init__(self, files: dict[str, Path], rules: list[Rule]):
        self.files = files
        self.watch = Watch(rules)

    def __call__(self, elapsed: float) -> Optional[Stop]:
        return self.watch.update(elapsed, {n: consoles.read(p) for n, p in self.files.items()})
