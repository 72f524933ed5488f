"""The command lines of the benchmark's boots: ember, QEMU and kick-floor on the test guest, and
which boots a run makes for the rows asked for. ember's runs write their run record
(--report), which the runner checks (checks.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import FACES, GUEST_MEMORY, QBOOT, QEMU, Settings


@dataclass
class Boot:
    """One monitor process: which figures it yields and how to start it."""
    monitor: str
    face: str
    ioeventfd: bool
    benches: tuple[str, ...]  # guest tests, e.g. ("bench-kick", "bench-blk")
    cmd: list[str]
    ok_status: int  # the exit status of a guest whose tests all passed
    report: Optional[Path] = None  # ember's run record

    @property
    def label(self) -> str:
        return f"{self.monitor} {self.face} ioeventfd={'on' if self.ioeventfd else 'off'}"


@dataclass
class Commands:
    ember: Path
    floor: Path
    guest: Path
    disk: Path
    s: Settings  # read when a command is made (--callgrind changes the counts between runs)
    qemu_cache: str
    blk_engines: tuple[str, ...] = ()  # --blk-engines: extra ember blk boots, one per aio=

    def guest_cmdline(self, benches, face) -> str:
        s = self.s
        return (f"tests={','.join(benches)} virtio={face} kick.count={s.kick_count} "
                f"blk.count={s.blk_count} irq.count={s.irq_count}")

    def ember_cmd(self, benches, face, ioeventfd, report: Optional[Path] = None,
                  aio: Optional[str] = None) -> list[str]:
        disk = (str(self.disk) + ("" if ioeventfd else ",ioeventfd=off")
                + (f",aio={aio}" if aio else ""))
        return [str(self.ember), "run", "--kernel", str(self.guest), "--memory", GUEST_MEMORY,
                "--log-level", "warn", "--disk", disk, "--rng",
                "--cmdline", self.guest_cmdline(benches, face)] + _report(report)

    def ember_switch_cmd(self, face: str, sock: Path, gap_ms: int,
                         report: Optional[Path] = None) -> list[str]:
        """The switch row's boot: bench-kick in rounds, an API socket to switch between them."""
        s = self.s
        return [str(self.ember), "run", "--api-sock", str(sock), "--kernel", str(self.guest),
                "--memory", GUEST_MEMORY, "--log-level", "warn", "--disk", str(self.disk),
                "--cmdline", f"tests=bench-kick virtio={face} kick.count={s.kick_count} "
                f"kick.rounds={s.switch_rounds} kick.gap_ms={gap_ms}"] + _report(report)

    def qemu_cmd(self, benches, face, ioeventfd) -> list[str]:
        onoff = "on" if ioeventfd else "off"
        return [QEMU, "-M", "q35,sata=off,smbus=off", "-bios", QBOOT, "-accel", "kvm",
                "-cpu", "host,-arch-capabilities", "-smp", "1", "-m", GUEST_MEMORY,
                "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                "-kernel", str(self.guest), "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                "-drive", f"file={self.disk},if=none,id=d0,format=raw,{self.qemu_cache}",
                "-device", f"virtio-blk-pci,drive=d0,ioeventfd={onoff}",
                "-device", "virtio-rng-pci",
                "-append", self.guest_cmdline(benches, face)]

    def floor_cmd(self, benches, face, ioeventfd, irq, drain=True) -> list[str]:
        cmd = [str(self.floor), "--kernel", str(self.guest)]
        if ioeventfd:
            cmd.append("--ioeventfd")
            if not drain:
                cmd.append("--no-drain")
        if irq:
            cmd.append("--irq")
        return cmd + ["--cmdline", self.guest_cmdline(benches, face)]

    def ember_startup_cmd(self, report: Optional[Path] = None) -> list[str]:
        return [str(self.ember), "run", "--kernel", str(self.guest), "--memory", GUEST_MEMORY,
                "--log-level", "warn", "--cmdline", "tests=bench-exit"] + _report(report)

    def qemu_microvm_cmd(self) -> list[str]:
        return [QEMU, "-M", "microvm", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
                "-smp", "1", "-m", GUEST_MEMORY, "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", "stdio", "-kernel", str(self.guest),
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-append", "tests=bench-exit"]

    def boots(self, rows: list[str], logs: Path) -> list[Boot]:
        """Rows 1-3: per face and ioeventfd setting, the floor's kick (and its no-drain
        reference), one ember and one QEMU boot running every benchmark asked for, and the
        floor's interrupt round trip."""
        boots = []
        for face in FACES:
            for ioeventfd in (True, False):
                if "kick" in rows:
                    boots.append(Boot("floor", face, ioeventfd, ("bench-kick",),
                                      self.floor_cmd(["bench-kick"], face, ioeventfd, False), 0))
                if "kick" in rows and ioeventfd:
                    # Reference: nobody waits on the eventfd, so no thread is woken per kick.
                    boots.append(Boot("floor-nodrain", face, ioeventfd, ("bench-kick",),
                                      self.floor_cmd(["bench-kick"], face, ioeventfd, False,
                                                     drain=False), 0))
                benches = []
                if "kick" in rows:
                    benches.append("bench-kick")
                if "blk" in rows:
                    benches.append("bench-blk")
                if "irq" in rows and ioeventfd:  # virtio-rng: ioeventfd always on
                    benches.append("bench-irq")
                if not benches:
                    continue
                report = logs / f"ember-{face}-{'ioev' if ioeventfd else 'user'}.report.json"
                boots.append(Boot("ember", face, ioeventfd, tuple(benches),
                                  self.ember_cmd(benches, face, ioeventfd, report), 0, report))
                # isa-debug-exit: QEMU exits with (status << 1) | 1.
                boots.append(Boot("qemu", face, ioeventfd, tuple(benches),
                                  self.qemu_cmd(benches, face, ioeventfd), 1))
                if "blk" in rows:
                    # --blk-engines: the blk row again per I/O engine, in the same run, next to
                    # the boots above (monitor "ember aio=E").
                    for aio in self.blk_engines:
                        r = logs / f"ember-{aio}-{face}-{'ioev' if ioeventfd else 'user'}" \
                                   ".report.json"
                        boots.append(Boot(f"ember aio={aio}", face, ioeventfd, ("bench-blk",),
                                          self.ember_cmd(["bench-blk"], face, ioeventfd, r, aio),
                                          0, r))
            if "irq" in rows:
                boots.append(Boot("floor", face, True, ("bench-irq",),
                                  self.floor_cmd(["bench-irq"], face, True, True), 0))
        return boots


def _report(path: Optional[Path]) -> list[str]:
    return ["--report", str(path)] if path is not None else []
