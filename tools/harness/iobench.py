"""tools/linux-boot --io-bench: Debian's fio and iperf3 in a Linux guest inside the emulated-SVM
L1, under ember or under QEMU 7.2 `-M q35` (virtio-blk-pci, virtio-net-pci), for the Linux I/O
rows of tools/bench/run. Both monitors get the same kernel, guest initramfs (tests/boot/l2-io,
fio and iperf3 with their libraries, the virtio modules), command line, vCPUs and memory; the same
disk image, zeros in the L1's RAM (so that the disk measured is the monitor's work, not the L1's
own emulated disk), opened buffered by both (tmpfs has no O_DIRECT) with ioeventfd on; and the
same tap, whose other end is an iperf3 server in the L1 (tests/boot/l1-net, mode=iperf3).

The guest prints the figures of fio's and iperf3's JSON reports (tests/boot/l2-io, with
tests/boot/io-figures.awk) as KEY=VALUE words; `parse` reads them and `lines` prints them as `io-result: NAME VALUE UNIT`, which tools/bench reads."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import flake, initramfs, plan as plan_, qemu
from .output import Fail
from .shell import ROOT, Kernel

GUEST_INIT = ROOT / "tests/boot/l2-io"
FIGURES = ROOT / "tests/boot/io-figures.awk"
IMAGE = "/tmp/ember-io.img"  # in the L1's RAM (tests/boot/l1-init writes it)
IMAGE_MIB = 256
SERIAL = "ember-io"
CPUS = "2"
MEMORY_MIB = 1024
SECONDS = 5  # each fio job and each iperf3 direction
IPERF_PORT = 5201
# name, fio --rw, --bs, --iodepth; the figure each gives and its unit.
FIO_JOBS = (("randread-4k-qd1", "randread", "4k", 1), ("randread-4k-qd32", "randread", "4k", 32),
            ("read-1m", "read", "1m", 8), ("write-1m", "write", "1m", 8))
NET_DIRECTIONS = ("tx", "rx")  # tx: guest -> L1, rx: L1 -> guest (iperf3 -R)
MODULES = (*plan_.VIRTIO_PCI_MODULES, "virtio_blk", "failover", "net_failover", "virtio_net")
# QEMU q35 with qboot (as tools/bench's rows 1-3) and what -kernel and its devices load.
Q35_FIRMWARE = ("bios-microvm.bin", "pvh.bin", "linuxboot_dma.bin", "kvmvapic.bin")

UNITS = {"randread-4k-qd1": "IOPS", "randread-4k-qd32": "IOPS", "read-1m": "MB/s",
         "write-1m": "MB/s", "net-tx": "Mbit/s", "net-rx": "Mbit/s"}
NAMES = tuple(UNITS)
NET_NAMES = ("net-tx", "net-rx")
# tools/bench's linux-io row: each monitor as it is, and with vhost-net (--vhost), whose
# figures are the network's only.
MONITORS = ("ember", "qemu", "ember vhost", "qemu vhost")

DONE = re.compile(r"^ember-io: done ", re.M)  # the guest's last line
LINE = re.compile(r"^ember-io: (fio|iperf3|error|done) ?(\S*) ?(.*)$", re.M)


def cmdline() -> str:
    jobs = ",".join(f"{n}:{rw}:{bs}:{d}" for n, rw, bs, d in FIO_JOBS)
    return (f"console=ttyS0 panic=-1 reboot=k quiet ember.io-disk={SERIAL} "
            f"ember.net-mac={plan_.NET_MAC} ember.net-addr={plan_.NET_GUEST_ADDR} "
            f"ember.net-peer={plan_.NET_L1_ADDR} ember.io-seconds={SECONDS} ember.io-fio={jobs}")


def ember_args(line: str, vhost: bool = False) -> list[str]:
    """VHOST (--vhost): the net device on the L1's vhost-net (vhost=on)."""
    net = f"tap={plan_.NET_TAP},mac={plan_.NET_MAC}" + (",vhost=on" if vhost else "")
    return ["run", "--kernel", "/ember/vmlinux", "--initrd", "/ember/l2-initramfs.cpio",
            "--cmdline", line, "--cpus", CPUS, "--memory", f"{MEMORY_MIB}M",
            "--disk", f"{IMAGE},serial={SERIAL}", "--net", net, "--log-level", "info"]


def qemu_args(line: str, vhost: bool = False) -> list[str]:
    """QEMU 7.2's q35 with virtio-blk-pci and virtio-net-pci, ioeventfd on (QEMU's default), the
    drive buffered with its default thread pool, the tap without vhost as ember's is (with VHOST,
    --vhost: vhost=on, as ember's vhost=on)."""
    return ["-M", "q35", "-accel", "kvm", "-cpu", "host", "-smp", CPUS, "-m", f"{MEMORY_MIB}M",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-no-reboot", "-bios", str(initramfs.FIRMWARE_DIR / "bios-microvm.bin"),
            "-kernel", "/ember/vmlinux", "-initrd", "/ember/l2-initramfs.cpio", "-append", line,
            "-drive", f"if=none,id=io,format=raw,file.driver=file,file.filename={IMAGE}",
            "-device", f"virtio-blk-pci,drive=io,serial={SERIAL},ioeventfd=on",
            "-netdev", f"tap,id=net0,ifname={plan_.NET_TAP},script=no,downscript=no,"
                       f"vhost={'on' if vhost else 'off'}",
            "-device", f"virtio-net-pci,netdev=net0,mac={plan_.NET_MAC},ioeventfd=on,romfile="]


def guest_initramfs(work: Path, kernel: Kernel) -> Path:
    files = []
    for tool in ("fio", "iperf3"):
        path = shutil.which(tool)
        if path is None:
            raise Fail(f"--io-bench needs Debian's {tool} on this machine (apt-get install {tool})")
        files += initramfs.with_libraries(Path(path), f"/bin/{tool}")
    files.append((str(FIGURES), "/bin/io-figures.awk"))
    return initramfs.build(work / "l2-initramfs.cpio", GUEST_INIT, kernel.modules, list(MODULES),
                           sorted(set(files)))


def l1_initramfs(work: Path, kernel: Kernel, monitor: str, ember: str, l2: Path,
                 vhost: bool = False) -> Path:
    line = cmdline()
    args = qemu_args(line, vhost) if monitor == "qemu" else ember_args(line, vhost)
    (work / "args").write_text("".join(a + "\n" for a in args))
    (work / "net").write_text(f"tap={plan_.NET_TAP} addr={plan_.NET_L1_ADDR}/24 "
                              f"guest={plan_.NET_GUEST_ADDR.split('/')[0]} port={IPERF_PORT} "
                              "bytes=0 mode=iperf3\n")
    (work / "io-image").write_text(f"{IMAGE} {IMAGE_MIB}\n")
    if monitor == "qemu":
        binary = shutil.which(qemu.QEMU)
        if binary is None:
            raise Fail(f"no {qemu.QEMU} on PATH")
        files = initramfs.with_libraries(Path(binary), "/usr/bin/qemu-system-x86_64")
        files += [(str(initramfs.FIRMWARE_DIR / fw), str(initramfs.FIRMWARE_DIR / fw))
                  for fw in Q35_FIRMWARE if (initramfs.FIRMWARE_DIR / fw).exists()]
        (work / "monitor").write_text("/usr/bin/qemu-system-x86_64\n")
        files.append((str(work / "monitor"), "/ember/monitor"))
    else:
        files = initramfs.ember_file(work, ember)
    iperf3 = shutil.which("iperf3")
    if iperf3 is None:
        raise Fail("--io-bench needs Debian's iperf3 on this machine (apt-get install iperf3)")
    files += initramfs.with_libraries(Path(iperf3), "/bin/iperf3")
    files += [(str(ROOT / "tests/boot/l1-net"), "/ember/l1-net"), (str(work / "net"), "/ember/net"),
              (str(work / "io-image"), "/ember/io-image"), (str(kernel.vmlinux), "/ember/vmlinux"),
              (str(l2), "/ember/l2-initramfs.cpio"), (str(work / "args"), "/ember/args")]
    return initramfs.build(work / "l1-initramfs.cpio", ROOT / "tests/boot/l1-init", kernel.modules,
                           [*initramfs.L1_KVM, "tun", *(initramfs.L1_VHOST_NET if vhost else ())],
                           sorted(set(files)))


@dataclass
class Report:
    values: dict[str, float] = field(default_factory=dict)  # NAME -> figure in UNITS[NAME]
    latency_us: dict[str, float] = field(default_factory=dict)  # fio jobs: mean completion latency
    errors: list[str] = field(default_factory=list)
    done: bool = False  # the guest's last line came

    @property
    def summary(self) -> str:
        """`N passed, M failed` for the verdict: each figure a check, each error a failure."""
        if not self.done:
            return ""
        failed = len(self.errors) + sum(1 for n in NAMES if n not in self.values)
        return f"{len(self.values)} passed, {failed} failed"


def words(text: str) -> dict[str, str]:
    """io-figures.awk's KEY=VALUE words."""
    out = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        if not eq:
            raise ValueError(f"'{word}' is not KEY=VALUE")
        out[key] = value
    return out


def _fio(name: str, text: str) -> tuple[float, float]:
    """One fio job's figures: (IOPS or MB/s as UNITS says, mean completion latency in µs) of the
    direction that moved bytes."""
    w = words(text)
    if "error" in w:
        raise ValueError(w["error"].replace("_", " "))
    side = "write" if float(w["write-bytes"]) > 0 else "read"
    if float(w[f"{side}-bytes"]) <= 0:
        raise ValueError("it moved no bytes")
    figure = float(w[f"{side}-iops"]) if UNITS[name] == "IOPS" else float(w[f"{side}-bw"]) / 1e6
    return figure, float(w[f"{side}-clat-ns"]) / 1e3


def _iperf3(text: str) -> float:
    """One iperf3 run's figure: what the receiving side counted, in Mbit/s."""
    w = words(text)
    if "error" in w:
        raise ValueError(w["error"].replace("_", " "))
    if float(w["bytes"]) <= 0:
        raise ValueError("it moved no bytes")
    return float(w["bps"]) / 1e6


def parse(console: str) -> Report:
    r = Report()
    for kind, name, rest in LINE.findall(console):
        try:
            if kind == "fio":
                if name not in UNITS:
                    raise ValueError(f"an fio job this harness did not ask for: {name}")
                r.values[name], r.latency_us[name] = _fio(name, rest)
            elif kind == "iperf3":
                if f"net-{name}" not in UNITS:
                    raise ValueError(f"an iperf3 direction this harness did not ask for: {name}")
                r.values[f"net-{name}"] = _iperf3(rest)
            elif kind == "error":
                r.errors.append(f"{name} {rest}".strip())
            else:
                r.done = True
        except (ValueError, KeyError, IndexError, TypeError) as e:
            r.errors.append(f"{kind} {name}: its report does not parse ({e})")
    return r


def lines(r: Report) -> list[str]:
    out = []
    for name in NAMES:
        if name in r.values:
            extra = (f" (mean completion latency {r.latency_us[name]:.0f} us)"
                     if name in r.latency_us else "")
            out.append(f"io-result: {name} {r.values[name]:.1f} {UNITS[name]}{extra}")
    out += [f"io-error: {e}" for e in r.errors]
    return out


RESULT = re.compile(r"^io-result: (\S+) ([0-9.]+) ", re.M)


def results(output: str) -> dict[str, float]:
    """The figures in tools/linux-boot --io-bench's output (for tools/bench)."""
    return {m.group(1): float(m.group(2)) for m in RESULT.finditer(output)}



def verdict(v: flake.Verdict, monitor: str, monitor_status, stopped: bool,
            r: Report) -> flake.Verdict:
    """The boot's verdict, with one more flake: QEMU runs the guest with -no-reboot, so a guest
    that triple-faults (seen under fio and iperf3 in the L1, as ember's status 3 is) ends QEMU
    with status 0 before the guest's last line. That is a crash of the nested guest, tried again,
    not a failure of the benchmark."""
    if (v.status == flake.FAILED and monitor == "qemu" and monitor_status == 0 and not stopped
            and not r.done):
        return flake.Verdict("nested-reset", flake.NESTED_CRASH, (
            "QEMU exited with status 0 before the guest's last line: the nested guest reset "
            "(a triple fault, under -no-reboot)",))
    return v
