"""The switch row: what an ioeventfd kick saves over a userspace kick, in ONE guest session.

ember boots the test guest with an API socket; bench-kick runs `kick.rounds` timed loops of
`kick.count` kicks, `kick.gap_ms` apart. After each round's BENCH line the bench reads
GET /ember/counters (every kick of the round must have come the way the round claims, or the
round is dropped and counted) and then switches the disk's kick path for the next round with
PATCH /ember/devices/blk0 {"ioeventfd": ...}. The rounds alternate on, off, on, ... The kick row
compares two boots; here the process, the guest, its memory and its device are the same, and
only the path differs."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from harness import proc
from harness.apiclient import ApiClient, ApiError

ROUND_RE = re.compile(r"^BENCH kick (.*\bround=\d+\b.*)$", re.M)
GAP_MS = 300  # time for the bench to read the counters and switch (it polls every 20 ms)
POLL_S = 0.02


@dataclass
class Round:
    index: int
    ioeventfd: bool  # the kick path in effect for the round
    cycles: int
    count: int
    eventfd_kicks: int  # the disk's kicks during the round, by way (GET /ember/counters deltas)
    userspace_kicks: int

    @property
    def valid(self) -> bool:
        """Every kick of the round went the claimed way. The ioeventfd count may lag the
        guest's by the few kicks the loop had not read yet; none may go the other way beyond
        those."""
        right, wrong = ((self.eventfd_kicks, self.userspace_kicks) if self.ioeventfd
                        else (self.userspace_kicks, self.eventfd_kicks))
        return right >= self.count * 99 // 100 and wrong <= self.count // 100


@dataclass
class Session:
    """Drives one boot from proc.run's watch: reads the new BENCH lines from the console file,
    checks each round against the counters, switches the path."""
    out: Path
    api: ApiClient
    total: int  # rounds the guest runs; no switch after the last
    device: str = "blk0"
    ioeventfd: bool = True  # the path now
    rounds: list[Round] = field(default_factory=list)
    error: str = ""
    _seen: int = 0  # BENCH round lines handled
    _last: tuple[int, int] = (0, 0)  # the counters after the previous round

    def kicks(self) -> tuple[int, int]:
        counters = self.api.get("/ember/counters")
        for d in counters.get("devices", []):
            if d.get("id") == self.device:
                return int(d["kicks"]["ioeventfd"]), int(d["kicks"]["userspace"])
        raise ApiError(f"GET /ember/counters has no device {self.device}")

    def watch(self, _elapsed: float) -> Optional[proc.Stop]:
        try:
            text = self.out.read_text(errors="replace")
        except OSError:
            return None
        # Whole lines only: the guest may be half-way through writing the next one.
        lines = ROUND_RE.findall(text[:text.rfind("\n") + 1])
        try:
            for line in lines[self._seen:]:
                self._seen += 1
                kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
                ev, us = self.kicks()
                self.rounds.append(Round(int(kv["round"]), self.ioeventfd, int(kv["cycles"]),
                                         int(kv["count"]), ev - self._last[0],
                                         us - self._last[1]))
                self._last = (ev, us)
                if len(self.rounds) >= self.total:
                    continue
                self.ioeventfd = not self.ioeventfd
                self.api.patch(f"/ember/devices/{self.device}", {"ioeventfd": self.ioeventfd})
        except (ApiError, KeyError, ValueError, TypeError) as e:
            self.error = str(e)
            return proc.Stop("api", f"the switch row's API client: {e}")
        return None


def run_session(cmd: list[str], sock: Path, rounds: int, timeout: float, log_base: Path,
                runner: Callable = proc.run) -> tuple[proc.Result, Session]:
    """Runs CMD (an ember with --api-sock SOCK and ROUNDS bench-kick rounds) to its end,
    switching between rounds. The console goes to LOG_BASE.out, the log to LOG_BASE.err."""
    out, err = log_base.with_suffix(".out"), log_base.with_suffix(".err")
    session = Session(out, ApiClient(str(sock)), rounds)
    r = runner(cmd, timeout, out, err, watch=session.watch, poll_s=POLL_S, term_grace=5)
    return r, session
