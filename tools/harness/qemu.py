"""The QEMU command lines of a boot: the emulated-SVM L1 that runs the monitor where /dev/kvm
cannot run a stock kernel (PVM, ../shared/docs/platform.md), and QEMU microvm as the guest's
monitor for --monitor qemu (the benchmark's peer)."""
from __future__ import annotations

from pathlib import Path

from .plan import Disk

QEMU = "qemu-system-x86_64"


def l1_append(verbose: bool) -> str:
    # tsc=reliable: TCG's TSC is the host's, one counter for both vCPUs, but the L1's clocksource
    # watchdog, timing it against emulated timers, would mark it unstable; kvm then runs the L2
    # with its unstable-TSC compensation, which makes the L2's clock jump and stall.
    return "console=ttyS0 panic=-1 tsc=reliable" + ("" if verbose else " quiet")


def l1_drives(disks: list[Disk]) -> list[str]:
    """Each disk as a virtio-blk drive of the L1 with the serial ember-l1-diskN, by which
    tests/boot/l1-init finds it. The harness's own images go read-write even when ember gets them
    readonly: an unchanged checksum is then ember's doing."""
    args = []
    for i, d in enumerate(disks):
        # file.filename, not file=: a colon in the path must not read as a protocol prefix.
        protocol = "host_device" if Path(d.path).is_block_device() else "file"
        drive = (f"if=none,id=disk{i},format=raw,file.driver={protocol},"
                 f"file.filename={d.path.replace(',', ',,')}")
        if not d.own and d.readonly:
            drive += ",readonly=on"
        args += ["-drive", drive, "-device", f"virtio-blk-pci,drive=disk{i},serial=ember-l1-disk{i}"]
    return args


def l1_command(bzimage: Path, initramfs: Path, append: str, l1_console: Path, l2_console: Path,
               drives: list[str]) -> list[str]:
    """Two serial ports: ttyS0 is the L1's console, ttyS1 carries the guest's (tests/boot/l1-init).
    -no-reboot: a reset of the L1 ends QEMU, as its power-off does."""
    return [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-accel", "tcg,thread=multi", "-cpu", "qemu64,+svm,+npt", "-smp", "2", "-m", "2048",
            "-kernel", str(bzimage), "-initrd", str(initramfs), "-append", append,
            "-serial", f"file:{l1_console}", "-serial", f"file:{l2_console}", *drives]


def guest_args(cpus: str, mem_kib: int, kernel: str, initrd: str, cmdline: str) -> list[str]:
    """--monitor qemu: microvm (qboot, the PVH entry, no PCI), the same vCPUs, memory and command
    line, the console on stdio. rtc=on: without a CMOS clock the guest's rtc_cmos probe took
    17 s in the L1. microvm has no i8042 either; a guest that probes for one may stall (pass
    i8042.noprobe, as tools/bench does)."""
    return ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host", "-smp", cpus,
            "-m", f"{mem_kib // 1024}M", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", cmdline]
