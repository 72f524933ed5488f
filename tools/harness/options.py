"""tools/linux-boot's command line (its header comment is the --help): the harness's own options,
and everything else for `ember run`. A wrong command line raises UsageError (exit status 2)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

from .output import UsageError
from .shell import ROOT


@dataclass
class Options:
    mode: str = "auto"  # l1, direct or auto
    ember: str = str(ROOT / "build/ember")
    timeout: int = 300
    cache: str = ""
    verbose: bool = False
    keep: bool = False
    legacy: bool = False
    ioeventfd: str = "on"
    devices: bool = True
    net_balloon: bool = False
    exec_suite: bool = False
    exec_resume: str = ""  # --exec-resume FILE: the suite's progress over attempts (execsuite)
    io_bench: bool = False
    api: bool = False  # --api: ember configured and started through its API socket (l1-api)
    snapshot: bool = False  # --snapshot: with --api, snapshot, kill, restore, check again
    vhost: bool = False  # --vhost: the net device with vhost=on (the L1's vhost-net)
    vsock: bool = False  # --vsock: a vhost-vsock device and an echo each way (tests/boot/vsock-echo.c)
    monitor: str = "ember"
    ember_args: list[str] = field(default_factory=list)
    other_ember_args: bool = False  # an ember option the harness does not interpret
    user_cmdline: str = ""
    user_disks: list[str] = field(default_factory=list)  # the user's --disk values
    user_rng: bool = False
    log_level: str = ""
    cpus: str = "1"  # ember's defaults, for the expectations when an option is not given
    memory: str = "256M"
    help: bool = False

    @property
    def mem_kib(self) -> int:
        return memory_kib(self.memory)


# option -> (attribute, what a missing value needs)
_VALUED = {
    "--ember": ("ember", "a path"),
    "--timeout": ("timeout", "seconds"),
    "--cache": ("cache", "a directory"),
    "--ioeventfd": ("ioeventfd", "on or off"),
    "--monitor": ("monitor", "ember or qemu"),
    "--cmdline": ("user_cmdline", "a value"),
    "--disk": ("user_disks", "PATH[,options]"),
    "--log-level": ("log_level", "a level"),
    "--exec-resume": ("exec_resume", "a file"),
}
_FLAGS = {
    "--l1": ("mode", "l1"), "--direct": ("mode", "direct"), "--auto": ("mode", "auto"),
    "--verbose": ("verbose", True), "--keep": ("keep", True), "--legacy": ("legacy", True),
    "--no-devices": ("devices", False), "--net-balloon": ("net_balloon", True),
    "--rng": ("user_rng", True), "--exec-suite": ("exec_suite", True),
    "--io-bench": ("io_bench", True), "--api": ("api", True), "--snapshot": ("snapshot", True),
    "--vhost": ("vhost", True), "--vsock": ("vsock", True),
}


def parse(argv: list[str], environ: Optional[dict] = None) -> Options:
    environ = os.environ if environ is None else environ
    o = Options(cache=environ.get("EMBER_LINUX_CACHE") or str(ROOT / "build/linux"))
    timeout = "300"
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if arg in ("-h", "--help"):
            o.help = True
            return o
        if name in ("--kernel", "--initrd"):
            raise UsageError(f"{arg}: tools/linux-boot boots its own kernel and initramfs")
        if arg in _FLAGS:
            attr, value = _FLAGS[arg]
            setattr(o, attr, value)
        elif name in _VALUED or name in ("--cpus", "--memory") or arg == "-m":
            if eq:
                value = inline
            elif i + 1 < len(argv) and (argv[i + 1] != "" or name == "--cmdline"):
                i += 1
                value = argv[i]
            else:
                what = _VALUED[name][1] if name in _VALUED else "a value"
                raise UsageError(f"{name} needs {what}")
            if name in ("--cpus", "--memory", "-m"):
                if name == "--cpus":
                    o.cpus = value
                else:
                    o.memory = value
                o.ember_args += [arg] if eq else [name, value]
            elif name == "--timeout":
                timeout = value
            elif name == "--disk":
                o.user_disks.append(value)
            else:
                setattr(o, _VALUED[name][0], value)
        else:
            o.ember_args.append(arg)
            o.other_ember_args = True
        i += 1
    if not re.fullmatch(r"[0-9]+", timeout) or int(timeout) == 0:
        raise UsageError(f"--timeout wants a positive number of seconds, got '{timeout}'")
    o.timeout = int(timeout)
    if not re.fullmatch(r"[0-9]+", o.cpus):
        raise UsageError(f"--cpus wants a number, got '{o.cpus}'")
    if o.ioeventfd not in ("on", "off"):
        raise UsageError(f"--ioeventfd wants on or off, got '{o.ioeventfd}'")
    if o.monitor not in ("ember", "qemu"):
        raise UsageError(f"--monitor wants ember or qemu, got '{o.monitor}'")
    if o.exec_suite and (o.net_balloon or o.monitor != "ember" or o.legacy or o.ioeventfd != "on"
                         or not o.devices or o.user_rng or o.user_disks or o.ember_args
                         or o.user_cmdline or o.log_level):
        raise UsageError("--exec-suite runs its own `ember exec` cases: no other boot option "
                         "(only --ember, --cache, --timeout, --verbose, --keep, --l1, "
                         "--exec-resume)")
    if o.exec_resume and not o.exec_suite:
        raise UsageError("--exec-resume resumes the ember exec suite: it needs --exec-suite")
    if o.io_bench and (o.exec_suite or o.net_balloon or o.legacy or o.ioeventfd != "on"
                       or not o.devices or o.user_rng or o.user_disks or o.ember_args
                       or o.user_cmdline or o.log_level):
        raise UsageError("--io-bench runs its own guest, disk and tap: no other boot option "
                         "(only --monitor, --vhost, --ember, --cache, --timeout, --verbose, --keep, "
                         "--l1)")
    if o.monitor == "qemu" and not o.io_bench and (o.devices or o.net_balloon or o.user_rng or o.user_disks
                                or o.other_ember_args):
        raise UsageError("--monitor qemu boots a bare machine: add --no-devices, and no --disk, "
                         "--rng, --net-balloon or other ember options than --cpus and --memory")
    if o.api and (o.exec_suite or o.io_bench or o.monitor != "ember" or o.ioeventfd != "on"
                  or o.other_ember_args or o.user_disks or o.user_rng):
        raise UsageError("--api drives ember through Firecracker's API with the harness's own "
                         "devices: no --exec-suite, --io-bench, --monitor qemu, --ioeventfd=off, "
                         "--disk, --rng or other ember options")
    if o.vhost and not (o.net_balloon or o.io_bench):
        raise UsageError("--vhost serves --net-balloon's (or --io-bench's) virtio-net with the "
                         "L1's vhost-net: it needs one of them")
    if o.vsock and not o.net_balloon:
        raise UsageError("--vsock asks the L1 for its side of the echo over --net-balloon's tap: "
                         "it needs --net-balloon")
    if o.vsock and o.snapshot:
        raise UsageError("--vsock and --snapshot: a vsock device cannot be snapshotted")
    if o.vhost and o.snapshot:
        raise UsageError("--vhost and --snapshot: a vhost-net device cannot be snapshotted")
    if o.snapshot and not (o.api and o.net_balloon):
        raise UsageError("--snapshot snapshots the machine through the API and asks for it over "
                         "the tap: it needs --api and --net-balloon")
    memory_kib(o.memory)
    return o


def resolve_mode(o: Options, hardware_virt: bool) -> None:
    """--auto becomes --direct with VMX or SVM, --l1 otherwise (always with --exec-suite and
    --io-bench);
    --net-balloon needs the L1."""
    if o.exec_suite and o.mode == "direct":
        raise UsageError("--exec-suite runs in the L1 (its / a tmpfs that ember exec shares): "
                         "it needs --l1 (or --auto)")
    if o.io_bench and o.mode == "direct":
        raise UsageError("--io-bench runs in the L1 (the disk image in its RAM, the iperf3 server "
                         "on its end of the tap): it needs --l1 (or --auto)")
    if o.mode == "auto":
        o.mode = "l1" if o.exec_suite or o.io_bench else "direct" if hardware_virt else "l1"
    if o.api and o.mode != "l1":
        raise UsageError("--api runs its API client (curl) inside the L1: it needs --l1 (or --auto "
                         "choosing it)")
    if o.net_balloon and o.mode != "l1":
        raise UsageError("--net-balloon runs the tap's other end inside the L1: it needs --l1 "
                         "(or --auto choosing it)")


def hardware_virt(cpuinfo: str) -> bool:
    return re.search(r"\b(vmx|svm)\b", cpuinfo) is not None


def memory_kib(text: str) -> int:
    """--memory as ember reads it (vmm/Cli.cpp parseMemorySize), in KiB; plain numbers are MiB."""
    m = re.fullmatch(r"([0-9]+)(K|M|G|T)?(B|IB)?", text.upper())
    if not m or (m.group(3) and not m.group(2)):
        raise UsageError(f"--memory '{text}' is not a size tools/linux-boot understands "
                         "(use e.g. 512M or 2G)")
    shift = {"K": 0, "M": 10, "G": 20, "T": 30, None: 10}[m.group(2)]
    return int(m.group(1)) << shift
