"""The initramfs images of a boot, made by tests/boot/build-initramfs: the guest's (busybox, its
virtio modules, tests/boot/l2-init), and for --l1 the L1's: tests/boot/l1-init, the KVM modules,
the monitor (ember, or QEMU with its libraries and firmware), the guest's kernel and initramfs,
and /ember/args, the monitor's arguments one per line; for --exec-suite the L1 of the `ember
exec` suite (execsuite)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

from . import apiplan, execsuite, qemu
from . import plan as plan_
from .output import Fail, UsageError
from .shell import ROOT, Kernel

BUILD = ROOT / "tests/boot/build-initramfs"
L1_VIRTIO_BLK = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                 "virtio_pci", "virtio_blk")
L1_KVM = ("irqbypass", "kvm", "kvm-amd")
# vhost_net and what its modules.dep names besides tun (which the tap already loads).
L1_VHOST_NET = ("vhost_iotlb", "vhost", "tap", "vhost_net")
# vhost_vsock and its modules.dep.
L1_VHOST_VSOCK = ("vhost_iotlb", "vhost", "vsock", "vmw_vsock_virtio_transport_common",
                  "vhost_vsock")
VSOCK_ECHO = ROOT / "tests/boot/vsock-echo.c"
QEMU_FIRMWARE = ("bios-microvm.bin", "pvh.bin", "linuxboot_dma.bin")
FIRMWARE_DIR = Path("/usr/share/qemu")


def build(out: Path, init: Path, modules_dir: Path, modules: list[str],
          files: list[tuple[str, str]]) -> Path:
    cmd = [str(BUILD), "-o", str(out), "--init", str(init), "--modules-dir", str(modules_dir)]
    for m in modules:
        cmd += ["--module", m]
    for src, dest in files:
        cmd += ["--file", f"{src}:{dest}"]
    if subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode != 0:
        raise Fail(f"build-initramfs could not make {out}")
    return out


def vsock_echo(work: Path) -> Path:
    """tests/boot/vsock-echo.c built static, for the guest and the L1 (--vsock)."""
    out = work / "vsock-echo"
    if not out.exists():
        r = subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                            str(VSOCK_ECHO)], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise Fail(f"building {VSOCK_ECHO} failed: {r.stderr.strip()}")
    return out


def guest(work: Path, kernel: Kernel, p: plan_.Plan) -> Path:
    files = [(str(vsock_echo(work)), "/bin/vsock-echo")] if p.vsock else []
    return build(work / "l2-initramfs.cpio", ROOT / "tests/boot/l2-init", kernel.modules,
                 p.virtio_modules, files)


def ldd_libraries(ldd_output: str) -> list[str]:
    """The absolute paths in ldd's output: each library (after =>) and the loader."""
    libs = []
    for line in ldd_output.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] == "=>" and f[2].startswith("/"):
            libs.append(f[2])
        elif f and f[0].startswith("/"):
            libs.append(f[0])
    return libs


def l1_args(p: plan_.Plan, monitor: str, cpus: str, mem_kib: int) -> list[str]:
    """/ember/args: `run --kernel ...` and ember's options, or QEMU's arguments. Each disk is
    @l1disk:ember-l1-diskN[,options], which l1-init turns into the L1's device of that serial."""
    for arg in [p.cmdline, *p.ember_args, *(d.options for d in p.disks)]:
        if "\n" in arg:
            raise UsageError(f"--l1 passes ember's arguments one per line; this one has a newline: {arg}")
    if monitor == "qemu":
        args = qemu.guest_args(cpus, mem_kib, "/ember/vmlinux", "/ember/l2-initramfs.cpio", p.cmdline)
    else:
        args = ["run", "--kernel", "/ember/vmlinux", "--initrd", "/ember/l2-initramfs.cpio",
                "--cmdline", p.cmdline]
    for i, d in enumerate(p.disks):
        args += ["--disk", f"@l1disk:ember-l1-disk{i}{d.options}"]
    if monitor == "ember":
        args += p.ember_args
    return args


def l1_modules(p: plan_.Plan, net_balloon: bool) -> list[str]:
    """The L1's modules: its disks' virtio-blk, KVM, and for the tap tun (and with --vhost
    vhost_net, which gives /dev/vhost-net; with --vsock vhost_vsock, /dev/vhost-vsock)."""
    out = ((list(L1_VIRTIO_BLK) if p.disks else []) + list(L1_KVM)
           + (["tun"] if net_balloon else []) + (list(L1_VHOST_NET) if p.vhost else []))
    for m in L1_VHOST_VSOCK if p.vsock else ():
        if m not in out:
            out.append(m)
    return out


def net_settings() -> str:
    """/ember/net, the shell assignments tests/boot/l1-net reads."""
    return (f"tap={plan_.NET_TAP} addr={plan_.NET_L1_ADDR}/24 "
            f"guest={plan_.NET_GUEST_ADDR.split('/')[0]} port={plan_.NET_PORT} "
            f"bytes={plan_.NET_BYTES}\n")


def with_libraries(binary: Path, dest: Optional[str] = None) -> list[tuple[str, str]]:
    """The binary (at DEST, default its own path) and the shared libraries ldd finds for it and
    the loader, each at its own path: the L1 has no other copy of them."""
    if not binary.is_file():
        raise Fail(f"no {binary}")
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    if "not found" in ldd.stdout:
        raise Fail(f"ldd {binary}: a library is missing:\n{ldd.stdout}")
    return [(str(binary), dest or str(binary))] + [(lib, lib) for lib in ldd_libraries(ldd.stdout)]


def _qemu_files(work: Path) -> list[tuple[str, str]]:
    """QEMU, the shared libraries it links (and the loader) and the firmware microvm loads, at
    the paths it was built for; /ember/monitor tells l1-init to run it instead of ember."""
    binary = shutil.which(qemu.QEMU)
    if binary is None:
        raise Fail(f"no {qemu.QEMU} on PATH")
    files = with_libraries(Path(binary), "/usr/bin/qemu-system-x86_64")
    files += [(str(FIRMWARE_DIR / fw), str(FIRMWARE_DIR / fw)) for fw in QEMU_FIRMWARE
              if (FIRMWARE_DIR / fw).exists()]
    (work / "monitor").write_text("/usr/bin/qemu-system-x86_64\n")
    return files + [(str(work / "monitor"), "/ember/monitor")]


def ember_file(work: Path, ember: str) -> list[tuple[str, str]]:
    """The L1 kernel copies its initramfs under TCG: a copy of ember without debug info is a few
    MB instead of over 20."""
    stripped: Optional[Path] = work / "ember"
    if shutil.which("strip") is None or subprocess.run(
            ["strip", "--strip-debug", "-o", str(stripped), ember],
            stdin=subprocess.DEVNULL, capture_output=True).returncode != 0:
        stripped = None
    return [(str(stripped or ember), "/ember/ember")]


def l1(work: Path, kernel: Kernel, p: plan_.Plan, monitor: str, ember: str, cpus: str,
       mem_kib: int, net_balloon: bool, l2_initramfs: Path,
       api: Optional[list[tuple[str, str, dict]]] = None, snapshot: bool = False) -> Path:
    """API: --api's requests (apiplan), which tests/boot/l1-api sends with curl to an ember that
    has only its API socket and the options the API has no field for. SNAPSHOT (--snapshot):
    /ember/snapshot tells l1-api to snapshot, kill and restore ember when the guest asks."""
    args = apiplan.ember_args(p) if api else l1_args(p, monitor, cpus, mem_kib)
    (work / "args").write_text("".join(a + "\n" for a in args))
    files = _qemu_files(work) if monitor == "qemu" else ember_file(work, ember)
    if api:
        (work / "api").write_text(apiplan.text(api))
        curl = shutil.which("curl")
        if curl is None:
            raise Fail("--api needs curl (Debian's curl package) to put into the L1")
        files += with_libraries(Path(curl), "/usr/bin/curl")
        files += [(str(ROOT / "tests/boot/l1-api"), "/ember/l1-api"), (str(work / "api"), "/ember/api")]
        if snapshot:
            (work / "snapshot").write_text("")
            files.append((str(work / "snapshot"), "/ember/snapshot"))
    if p.vsock:
        files.append((str(vsock_echo(work)), "/ember/vsock-echo"))
    if net_balloon:
        (work / "net").write_text(net_settings())
        files += [(str(ROOT / "tests/boot/l1-net"), "/ember/l1-net"),
                  (str(work / "net"), "/ember/net")]
    files += [(str(kernel.vmlinux), "/ember/vmlinux"), (str(l2_initramfs), "/ember/l2-initramfs.cpio"),
              (str(work / "args"), "/ember/args")]
    return build(work / "l1-initramfs.cpio", ROOT / "tests/boot/l1-init", kernel.modules,
                 l1_modules(p, net_balloon), files)


def is_dynamic(binary: str) -> bool:
    """Whether ldd finds shared libraries (the L1 initramfs needs a static ember)."""
    return subprocess.run(["ldd", binary], capture_output=True,
                          stdin=subprocess.DEVNULL).returncode == 0


def l1_exec(work: Path, kernel: Kernel, ember: str, verbose: bool,
            progress: Optional[execsuite.Progress] = None) -> Path:
    """The L1 of tools/linux-boot --exec-suite: the KVM modules, ember, virtiofsd with its
    libraries, and what execsuite.files lists (the kernel, its modules directory, l1-exec and
    its arguments: PROGRESS's checks are not run again)."""
    files = (ember_file(work, ember) + with_libraries(execsuite.VIRTIOFSD)
             + execsuite.files(work, kernel, verbose, progress))
    return build(work / "l1-initramfs.cpio", ROOT / "tests/boot/l1-init", kernel.modules,
                 list(L1_KVM), files)
