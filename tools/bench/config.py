"""The benchmark's constants and its settings per run length (--quick, --runs)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACES = ("legacy", "modern")
KICK_OF = {"legacy": "PIO", "modern": "MMIO"}
MONITORS = ("floor", "ember", "qemu")
ALL_ROWS = ("kick", "switch", "blk", "cpu", "irq", "startup", "snapshot", "linux", "linux-io")
# linux, linux-io: only when asked for (--rows, or --linux for both)
DEFAULT_ROWS = ("kick", "switch", "blk", "cpu", "irq", "startup", "snapshot")
DEPTHS = (1, 32)
# The CPU-time row: ember as it runs by default (adaptive polling), ember that never polls, QEMU.
CPU_MONITORS = ("ember", "ember poll=0", "qemu")
GUEST_MEMORY = "256M"
DISK_BYTES = 64 << 20
QEMU = "qemu-system-x86_64"
GNU_TIME = "/usr/bin/time"  # Debian's `time` package
# The same firmware-light q35 for every QEMU row 1-3 boot: qboot (Debian ships it as
# bios-microvm.bin) instead of SeaBIOS, which takes ~8 s here because this host emulates guest
# kernel-mode code. q35 rather than microvm because microvm has no port I/O to PCI (no legacy
# face); the guest assigns the BARs itself.
QBOOT = "/usr/share/qemu/bios-microvm.bin"
HAND_BEGIN = "<!-- hand-written: tools/bench/run keeps this block as it is -->"
HAND_END = "<!-- end of hand-written block -->"


@dataclass
class Settings:
    runs: int
    startup_runs: int
    kick_count: int
    blk_count: int
    irq_count: int
    timeout: int
    switch_rounds: int = 10  # the switch row's rounds per boot, half with each kick path

    @staticmethod
    def make(quick: bool, runs: int | None) -> "Settings":
        if quick:
            s = Settings(runs=1, startup_runs=3, kick_count=2000, blk_count=400, irq_count=200,
                         timeout=60, switch_rounds=4)
        else:
            s = Settings(runs=5, startup_runs=10, kick_count=20000, blk_count=4000,
                         irq_count=2000, timeout=180)
        if runs is not None:
            s.runs = runs
            s.startup_runs = 2 * runs
        return s



def on(b: bool) -> str:
    return "on" if b else "off"
