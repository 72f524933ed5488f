"""What one boot attaches and asks, worked out from the options (and the images' checksums)
before anything runs: the disks and their ember options, the rest of ember's options, the
guest's checks and their expectations, its virtio modules and its kernel command line."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Optional

from .images import MiB, GuestImages
from .options import Options

# --net-balloon: the tap ember creates in the L1 (tests/boot/l1-net serves its other end) and a
# balloon of 1/16 of the guest's memory. The L1's port 5000 answers requests, 5001 serves the
# file the guest fetches.
NET_TAP = "ember0"
NET_MAC = "52:54:00:e3:be:01"
NET_L1_ADDR = "10.0.2.1"
NET_GUEST_ADDR = "10.0.2.15/24"
NET_PORT = 5000
NET_BYTES = 64 * MiB
NET_CHECKS = ("net-address", "net-ping", "net-to-guest", "net-from-guest", "balloon")
# --vsock: the guest's CID and the bytes echoed each way.
VSOCK_CID = 3
VSOCK_BYTES = 4 * MiB
VSOCK_MODULES = ["vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport"]
VIRTIO_PCI_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                      "virtio_pci")


@dataclass(frozen=True)
class Disk:
    path: str  # on the host
    options: str  # ember's --disk options after the path, e.g. ",readonly,serial=ember-readonly"
    own: bool  # made by the harness (attached to the L1 read-write even when ember's is readonly)

    @property
    def ioeventfd(self) -> bool:
        return "ioeventfd=off" not in self.options

    @property
    def readonly(self) -> bool:
        return ",readonly," in "," + self.options.lstrip(",") + ","


@dataclass
class Plan:
    variant: str  # names the logs: l1, direct-bare-legacy, ...
    disks: list[Disk]
    rng: bool
    ember_args: list[str]  # everything for `ember run` but --kernel, --initrd, --cmdline, --disk
    balloon_kib: int
    checks: list[str]  # ember.checks=, run after the guest's default ones
    virtio_modules: list[str]
    cmdline: str
    transport: str  # the virtio-pci interface every device should use: legacy or modern
    vhost: bool = False  # the net device is served by the L1's vhost-net (--vhost)
    vsock: bool = False  # a virtio-vsock device on the L1's vhost-vsock (--vsock)


def _marks(o: Options) -> list[tuple[bool, str, str]]:
    """What sets a run apart from the default one: (applies, in the logs' names, in its title)."""
    return [(not o.devices, "-bare", " --no-devices"), (o.legacy, "-legacy", " --legacy"),
            (o.ioeventfd == "off", "-ioeventfd-off", " --ioeventfd=off"),
            (o.net_balloon, "-net-balloon", " --net-balloon"),
            (o.monitor == "qemu", "-qemu", " --monitor qemu"),
            (o.exec_suite, "-exec-suite", " --exec-suite"),
            (o.io_bench, "-io-bench", " --io-bench"), (o.api, "-api", " --api"),
            (o.snapshot, "-snapshot", " --snapshot"), (o.vhost, "-vhost", " --vhost"),
            (o.vsock, "-vsock", " --vsock")]


def variant(o: Options) -> str:
    """Names the logs: the runs of the ctests (modern, legacy, ioeventfd off) keep theirs side
    by side, e.g. l1, l1-legacy, direct-bare-qemu."""
    return o.mode + "".join(name for applies, name, _ in _marks(o) if applies)


def title(o: Options) -> str:
    """How the run names itself in its last line: linux-boot --l1 --legacy ..."""
    return f"linux-boot --{o.mode}" + "".join(t for applies, _, t in _marks(o) if applies)


def count_option(args: list[str], name: str) -> int:
    """How many times args have the option NAME (as NAME X or NAME=X)."""
    return sum(1 for a in args if a == name or a.startswith(name + "="))


def has_option(args: list[str], name: str, value: Optional[str] = None) -> bool:
    """Whether args have the option NAME (as NAME X or NAME=X), with VALUE if given."""
    for i, a in enumerate(args):
        if a == name and (value is None or (i + 1 < len(args) and args[i + 1] == value)):
            return True
        if a.startswith(name + "=") and (value is None or a.split("=", 1)[1] == value):
            return True
    return False


def make(o: Options, images: Optional[GuestImages]) -> Plan:
    mem_kib = o.mem_kib
    transport = "legacy" if o.legacy else "modern"
    disks: list[Disk] = []

    def add_disk(path: str, options: str, own: bool) -> None:
        if o.ioeventfd == "off" and "ioeventfd=" not in options:
            options += ",ioeventfd=off"
        disks.append(Disk(path, options, own))

    checks: list[str] = []
    expect: list[str] = []
    if o.devices:
        assert images is not None
        add_disk(str(images.data), ",serial=ember-data", True)
        add_disk(str(images.scratch), ",serial=ember-scratch", True)
        add_disk(str(images.readonly), ",readonly,serial=ember-readonly", True)
        checks += ["blk-data", "blk-scratch", "blk-readonly"]
        expect += [f"ember.blk-data=ember-data:{images.data_bytes}:{images.data_sha}",
                   f"ember.blk-scratch=ember-scratch:{images.scratch_offset}:{images.scratch_bytes}",
                   f"ember.blk-readonly=ember-readonly:{images.readonly_bytes}:{images.readonly_sha}"]
    for spec in o.user_disks:
        path = spec.split(",", 1)[0]
        add_disk(path, spec[len(path):], False)
    ember_args = list(o.ember_args)
    rng = o.devices or o.user_rng
    if rng:
        ember_args.append("--rng")
    balloon_kib = mem_kib // 16 // 1024 * 1024
    if o.net_balloon:
        net = (f"tap={NET_TAP},mac={NET_MAC}" + (",ioeventfd=off" if o.ioeventfd == "off" else "")
               + (",vhost=on" if o.vhost else ""))
        ember_args += ["--net", net, "--balloon", f"{balloon_kib}K"]
        expect += [f"ember.net-mac={NET_MAC}", f"ember.net-addr={NET_GUEST_ADDR}",
                   f"ember.net-peer={NET_L1_ADDR}:{NET_PORT}", f"ember.net-bytes={NET_BYTES}",
                   f"ember.balloon={balloon_kib}K", "ember.late-modules=virtio_balloon"]
    if o.vsock:
        ember_args += ["--vsock", f"cid={VSOCK_CID}"]
        expect += [f"ember.vsock-cid={VSOCK_CID}", f"ember.vsock-bytes={VSOCK_BYTES}"]
    ember_args += ["--log-level", o.log_level or "debug"]

    # The virtio modules of the devices attached, in dependency order: each insmod costs the
    # nested guest seconds (most of it cross-vCPU work, slow under emulation), so only what is used.
    virtio_console = has_option(ember_args, "--console", "virtio")
    net, balloon = has_option(ember_args, "--net"), has_option(ember_args, "--balloon")
    modules: list[str] = []
    if disks or rng or net or balloon or virtio_console or o.vsock:
        modules += VIRTIO_PCI_MODULES
    modules += ["virtio_blk"] if disks else []
    modules += ["failover", "net_failover", "virtio_net"] if net else []
    modules += ["virtio_console"] if virtio_console else []
    modules += ["virtio-rng"] if rng else []
    modules += ["virtio_balloon"] if balloon else []
    modules += VSOCK_MODULES if o.vsock else []

    # The checks of the devices as a whole, whoever attached them: the interface every device
    # negotiated, the rng, and (last, once the queues have worked) MSI-X vectors that fired; that
    # one is left out next to devices whose queues may stay quiet (a net or balloon device of the
    # user's, a virtio console). With --net-balloon the interface check comes after the balloon
    # check, which is what loads the balloon's driver.
    if modules:
        if not o.net_balloon:
            checks.insert(0, "virtio-transport")
        expect.append(f"ember.transport={transport}")
        checks += ["rng"] if rng else []
        if o.net_balloon:
            net_checks = list(NET_CHECKS)
            if o.vhost:
                # The driver reloaded mid-transfer, before the balloon check frees the files.
                net_checks.insert(net_checks.index("balloon"), "net-reload")
            checks += net_checks + (["vsock"] if o.vsock else []) + ["virtio-transport"]
        if (count_option(ember_args, "--net") == int(o.net_balloon)
                and count_option(ember_args, "--balloon") == int(o.net_balloon)
                and not virtio_console):
            checks.append("msi")

    # ember's i8042 has a keyboard (SendCtrlAltDel); QEMU's microvm has no i8042 at all, and a
    # command line with i8042.noprobe (tools/bench, for both monitors alike) keeps the kernel off it.
    if o.monitor == "ember" and "i8042.noprobe" not in (o.user_cmdline or ""):
        checks.append("keyboard")

    # --snapshot: last, once every device has worked (the guest's check_snapshot and the L1's
    # tests/boot/l1-api): snapshot, kill, restore in a new ember, and the devices again.
    if o.snapshot:
        checks.append("snapshot")

    # --api: the root drive adds `root=/dev/vda rw` after every word of the harness's (Firecracker's
    # rule, vmm/api/VmResources.cpp), and PUT /actions SendCtrlAltDel ends the boot: the guest
    # waits for it (ember.cad=1) after its checks.
    api_words = " ember.cad=1 ember.root-arg=1" if o.api else ""

    # panic=-1 and reboot=k: a panic reboots at once, and a reboot goes through the i8042, which
    # ends ember with status 0; the report, not the status alone, says whether the guest passed.
    cmdline = "console=ttyS0 panic=-1 reboot=k"
    cmdline += " ember.trace=1" if o.verbose else " quiet"
    cmdline += " virtio_pci.force_legacy=1" if o.legacy else ""
    cmdline += f" {o.user_cmdline}" if o.user_cmdline else ""
    # ember.host-time: the host's UTC seconds now, for the guest's check of its RTC (rtc).
    cmdline += f" ember.cpus={o.cpus} ember.mem={mem_kib}K ember.host-time={int(time.time())}"
    cmdline += api_words
    if checks:
        cmdline += f" ember.checks={','.join(checks)} {' '.join(expect)}"
    # Bytes, as the guest counts them (wc -c), whatever the locale.
    raw = cmdline.encode()
    cmdline += f" ember.cmdline={len(raw)}-{hashlib.md5(raw).hexdigest()}"
    return Plan(variant(o), disks, rng, ember_args, balloon_kib, checks, modules, cmdline,
                transport, o.vhost, o.vsock)
