"""The shell helpers the harness shares with the other tools: package installation
(tools/lib.sh ensure_packages) and the pinned Debian kernel (tests/boot/kernel.sh
linux_prepare, also used by tests/boot/pvm-direct). Both log their own errors."""
from __future__ import annotations

import fcntl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .output import Fail

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "tools/lib.sh"
KERNEL = ROOT / "tests/boot/kernel.sh"


@dataclass(frozen=True)
class Kernel:
    release: str  # e.g. 6.1.0-50-cloud-amd64
    bzimage: Path  # what QEMU boots as the L1
    vmlinux: Path  # the ELF (PVH entry) the monitor boots
    modules: Path  # lib/modules/<release>/kernel


def _bash(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script, "bash", str(LIB), str(KERNEL), *args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)


def ensure_packages(packages: list[str], lock_dir: Path) -> None:
    """Installs the missing ones, one caller at a time (the lock file in lock_dir)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = _bash('source "$1"; shift 2; ensure_packages "$@"', *packages)
    if r.returncode != 0:
        raise Fail(f"could not install {' '.join(packages)}")


def linux_prepare(cache: Path) -> Kernel:
    """Downloads, unpacks and extracts the kernel into cache (it takes the cache's lock)."""
    r = _bash('source "$1"; source "$2"; linux_prepare "$3"; '
              'printf "%s\\n" "$LINUX_RELEASE" "$LINUX_BZIMAGE" "$LINUX_VMLINUX" "$LINUX_MODULES"',
              str(cache))
    lines = r.stdout.splitlines()
    if r.returncode != 0 or len(lines) != 4:
        raise Fail(f"could not prepare the kernel in {cache}")
    return Kernel(lines[0], Path(lines[1]), Path(lines[2]), Path(lines[3]))
