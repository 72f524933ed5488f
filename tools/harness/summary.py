"""tools/linux-boot's last line, which tools/bench reads for its Linux row:

    linux-boot --l1 passed (42.0 s wall, L1 ready for ember at 8.42 s of uptime, ember ran 28.91 s)

`ran` is the monitor's whole run as the L1 measured it, from its start to its exit after the
guest's power-off. The guest's report, before it, has `/init at X s of uptime` in its header."""
from __future__ import annotations

import re
from typing import Optional


def timing(wall_s: float, monitor: str, l1_up: Optional[str], ran: Optional[str]) -> str:
    t = f"{wall_s:.1f} s wall"
    if l1_up:
        t += f", L1 ready for {monitor} at {l1_up} s of uptime"
    if ran:
        t += f", {monitor} ran {ran} s"
    return t


def monitor_ran(output: str) -> Optional[float]:
    """The monitor's run in seconds, from tools/linux-boot's output."""
    m = re.search(r"(?:ember|qemu) ran ([0-9.]+) s\)", output)
    return float(m.group(1)) if m else None
