"""The machine the benchmark runs on (for the report) and its scratch space."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from .config import QEMU


def read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info(qemu_ok: bool) -> dict:
    cpu = "unknown"
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = ""
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1]
            break
    modules = read_text("/proc/modules")
    if Path("/sys/module/kvm_pvm").exists() or re.search(r"^kvm_pvm ", modules, re.M):
        kvm = "PVM (kvm_pvm: no hardware virtualization; guest kernel-mode code is emulated)"
        kvm_short = "PVM"
    elif re.search(r"\bvmx\b", flags):
        kvm, kvm_short = "VMX (kvm_intel)", "VMX"
    elif re.search(r"\bsvm\b", flags):
        kvm, kvm_short = "SVM (kvm_amd)", "SVM"
    else:
        kvm, kvm_short = "unknown", "unknown"
    qemu_version = "not installed"
    if qemu_ok:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=30).stdout
        qemu_version = out.splitlines()[0].replace("QEMU emulator version ", "") if out else "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": os.uname().release,
        "kvm": kvm,
        "kvm_short": kvm_short,
        "qemu": qemu_version,
        "load_start": os.getloadavg(),
    }


def tmpfs_dir() -> Path:
    """A directory on tmpfs for the disk image (/dev/shm, where Debian mounts one)."""
    best, best_type = "", ""
    for line in read_text("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) >= 3 and "/dev/shm".startswith(parts[1]) and len(parts[1]) > len(best):
            best, best_type = parts[1], parts[2]
    if best_type != "tmpfs":
        raise SystemExit("tools/bench: /dev/shm is not a tmpfs here; the disk benchmarks need one")
    return Path(tempfile.mkdtemp(prefix="ember-bench-", dir="/dev/shm"))


def o_direct_works(path: Path) -> bool:
    import mmap
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    try:
        buf = mmap.mmap(-1, 4096)
        return os.preadv(fd, [buf], 0) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)

