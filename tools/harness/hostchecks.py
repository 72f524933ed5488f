"""The checks on the host once the monitor has exited, reported like the guest's
(`PASS name`, `FAIL name: why`). Each is a function of the run's Context that returns None when
it passes and the reason when it does not. What ember did comes from its run record (record.py),
never from its log."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from . import apiplan, consoles, plan as plan_
from . import images as disk_images
from .options import Options
from .record import Device, Record


@dataclass
class Context:
    options: Options
    plan: plan_.Plan
    images: Optional[disk_images.GuestImages]
    report: str  # the guest's report (consoles.guest_report)
    monitor_status: Optional[int]  # ember's (or QEMU's) exit status, None if unknown
    record: Optional[Record] = None
    record_error: str = ""  # why there is no record
    l1_console: str = ""
    # Each plan disk's path as ember was given it: the host's path, or the L1's /dev/vdX.
    disk_names: list[Optional[str]] = field(default_factory=list)


def _no_record(c: Context) -> str:
    return f"no run record from ember: {c.record_error or 'none was read'}"


def host_acpi_poweroff(c: Context) -> Optional[str]:
    """The guest's power-off ended ember through ACPI S5 (not a reset, a crash or a signal)."""
    if c.monitor_status is None:
        return "ember's exit status is unknown (it did not exit, or the L1 did not report it)"
    if c.record is None:
        return f"ember exited with status {c.monitor_status}; {_no_record(c)}"
    e = c.record.exit
    if e.reason != "power-off" or e.status != 0 or c.monitor_status != 0:
        return f"ember exited with status {c.monitor_status}; its run record says {e.describe()}"
    return None


def host_api(c: Context) -> Optional[str]:
    """--api: every request of the getting-started sequence, the wait for the guest's init
    (GET /ember/counters) and the SendCtrlAltDel were answered as Firecracker answers them
    (tests/boot/l1-api's `api:` lines on the L1's console)."""
    said = [line.split("linux-boot-l1: api: ", 1)[1] for line in c.l1_console.splitlines()
            if "linux-boot-l1: api: " in line]
    want = [f"{m} {path} " for m, path, _ in apiplan.requests(c.options, c.plan)]
    for i, start in enumerate(want):
        if i >= len(said) or not said[i].startswith(start) or not said[i].endswith("-> 204"):
            got = said[i] if i < len(said) else "nothing more"
            return f"request {i + 1} ({start.strip()}): the L1's API client said: {got}"
    rest = said[len(want):]
    if not any(r.startswith("GET /ember/counters -> 200") for r in rest):
        return f"no GET /ember/counters answered 200 after InstanceStart: {rest}"
    if not any("SendCtrlAltDel" in r and "-> 204" in r for r in rest):
        return f"SendCtrlAltDel was not answered 204: {rest}"
    return None


def host_snapshot(c: Context) -> Optional[str]:
    """--snapshot: tests/boot/l1-api paused ember, created the snapshot, killed ember, found the
    restored one Running and set its balloon (the L1's `snapshot:` lines, each answer 204), and
    the restored ember said how long its restore took."""
    said = [line.split("linux-boot-l1: snapshot: ", 1)[1] for line in c.l1_console.splitlines()
            if "linux-boot-l1: snapshot: " in line]
    steps = ["PATCH /vm Paused -> 204", "PUT /snapshot/create -> 204", "ember (pid",
             "restored: ", "PATCH /balloon"]
    for i, start in enumerate(steps):
        if i >= len(said) or not said[i].startswith(start):
            got = said[i] if i < len(said) else "nothing more"
            return f"step {i + 1} ({start}): the L1's API client said: {got}"
    if not said[4].endswith("-> 204"):
        return f"the restored ember's PATCH /balloon: {said[4]}"
    if consoles.restore_ms(c.l1_console) is None:
        return "the restored ember logged no `restore: ... in N ms` line on the L1's console"
    return None


def host_qemu_exit(c: Context) -> Optional[str]:
    """--monitor qemu: QEMU ended with status 0 (the guest's power-off or, with -no-reboot, a
    reset; the guest's report says which checks passed). QEMU writes no run record."""
    if c.monitor_status != 0:
        status = ("unknown (it did not exit, or the L1 did not report it)"
                  if c.monitor_status is None else str(c.monitor_status))
        return f"QEMU's exit status is {status}"
    return None


def host_blk_data(c: Context) -> Optional[str]:
    return disk_images.check_data(c.images)


def host_blk_scratch(c: Context) -> Optional[str]:
    return disk_images.check_scratch(c.images, consoles.from_guest(c.report, "blk-scratch-sha256"))


def host_blk_readonly(c: Context) -> Optional[str]:
    return disk_images.check_readonly(c.images)


@dataclass(frozen=True)
class Expected:
    id: str
    type: str
    name: str
    ioeventfd: bool
    vhost: bool = False  # served by the kernel's vhost: no kick or interrupt passes through ember


def expected_devices(c: Context) -> list[Expected] | str:
    """The virtio devices the harness attached, with their record ids (per type, in command-line
    order: the disks first as the plan has them, then the harness's net and balloon after any of
    the user's), or the reason they cannot be named."""
    out = []
    for i, d in enumerate(c.plan.disks):
        name = c.disk_names[i] if i < len(c.disk_names) else None
        if not name:
            return f"the L1 did not say which of its devices is {d.path}"
        out.append(Expected(f"blk{i}", "virtio-blk", f"virtio-blk {name}", d.ioeventfd))
    if c.plan.rng:
        out.append(Expected("rng0", "virtio-rng", "virtio-rng", True))
    if c.options.net_balloon:
        users_nets = plan_.count_option(c.options.ember_args, "--net")
        users_balloons = plan_.count_option(c.options.ember_args, "--balloon")
        out.append(Expected(f"net{users_nets}", "virtio-net", f"virtio-net {plan_.NET_TAP}",
                            c.options.ioeventfd == "on", c.plan.vhost))
        out.append(Expected(f"balloon{users_balloons}", "virtio-balloon", "virtio-balloon", True))
    if c.plan.vsock:
        # vhost-vsock serves rx and tx; the event queue stays ember's, so its kick (the driver
        # posting event buffers) comes through the ioeventfd like any device's.
        out.append(Expected("vsock0", "virtio-vsock", f"virtio-vsock cid {plan_.VSOCK_CID}", True))
    return out


def _onoff(b: bool) -> str:
    return "on" if b else "off"


def _as_recorded(d: Device) -> str:
    return (f"face {d.face or 'none (never activated)'}, ioeventfd {_onoff(d.ioeventfd)}, "
            f"{d.activations} activation(s), kicks: {d.kicks_ioeventfd} through ioeventfds, "
            f"{d.kicks_userspace} as userspace exits, {d.kicks_polled} found by polling")


def host_virtio_activation(c: Context) -> Optional[str]:
    """Each device the harness attached is in ember's run record, was activated with the
    interface --legacy asks for and the ioeventfd setting of its options (the rng and balloon
    always have it on), and its queue kicks came that way: through ioeventfds with it on, as
    userspace exits with it off."""
    if c.record is None:
        return _no_record(c)
    expected = expected_devices(c)
    if isinstance(expected, str):
        return expected
    for want in expected:
        d = c.record.device(want.id)
        if d is None or d.type != want.type or d.name != want.name:
            have = ", ".join(f"{x.id} ({x.name})" for x in c.record.devices) or "none"
            return f"ember's run record has no {want.id} {want.name} (its devices: {have})"
        if want.vhost:
            # vhost-net took the kicks from KVM's ioeventfd and raised the interrupts through the
            # irqfd: ember saw neither, nor a frame (the guest's checks say the frames moved).
            if d.face != c.plan.transport or d.activations == 0:
                return (f"{want.name} should be activated with the {c.plan.transport} interface; "
                        f"the run record says: {_as_recorded(d)}")
            if d.kicks_ioeventfd or d.kicks_userspace or d.kicks_polled or d.requests:
                return (f"{want.name} is vhost's, yet ember saw its kicks or frames: "
                        f"{_as_recorded(d)}, {d.requests} frames")
            continue
        # The first kick after a sleep always comes through the eventfd, so a polled device
        # has some of those too.
        kicked = d.kicks_ioeventfd if want.ioeventfd else d.kicks_userspace
        if d.face != c.plan.transport or d.ioeventfd != want.ioeventfd or not kicked:
            return (f"{want.name} should use the {c.plan.transport} interface with ioeventfd "
                    f"{_onoff(want.ioeventfd)} and its kicks should come "
                    f"{'through ioeventfds' if want.ioeventfd else 'as userspace exits'}; "
                    f"the run record says: {_as_recorded(d)}")
    return None


def host_balloon_rss(c: Context) -> Optional[str]:
    """ember's RSS, read in the L1 before the balloon's driver was loaded (with nearly all of
    the guest's memory written to and freed again) and once MemTotal showed the balloon inflated,
    fell by at least three quarters of the balloon: ember gave the inflated pages back."""
    before = consoles.l1_rss(c.l1_console, "balloon-before")
    after = consoles.l1_rss(c.l1_console, "balloon-after")
    if before is None or after is None:
        return (f"the L1's console lacks ember's VmRSS before ({before or 'none'}) or after "
                f"({after or 'none'}) the inflation")
    balloon = c.plan.balloon_kib
    if before - after < balloon * 3 // 4:
        return (f"ember's VmRSS went from {before} to {after} kB: {before - after} kB given back, "
                f"the balloon holds {balloon} kB (at least {balloon * 3 // 4} kB expected)")
    return None


CHECKS: dict[str, Callable[[Context], Optional[str]]] = {
    "host-virtio-activation": host_virtio_activation,
    "host-blk-data": host_blk_data,
    "host-blk-scratch": host_blk_scratch,
    "host-blk-readonly": host_blk_readonly,
    "host-balloon-rss": host_balloon_rss,
    "host-qemu-exit": host_qemu_exit,
    "host-acpi-poweroff": host_acpi_poweroff,
    "host-api": host_api,
    "host-snapshot": host_snapshot,
}


def names(c: Context) -> list[str]:
    """The checks that apply to this run, in the order they run."""
    o, p = c.options, c.plan
    out = []
    if o.monitor == "ember" and (p.disks or p.rng or o.net_balloon):
        out.append("host-virtio-activation")
    if o.devices:
        out += ["host-blk-data", "host-blk-scratch", "host-blk-readonly"]
    if o.net_balloon:
        out.append("host-balloon-rss")
    if o.api:
        out.append("host-api")
    if o.snapshot:
        out.append("host-snapshot")
    out.append("host-qemu-exit" if o.monitor == "qemu" else "host-acpi-poweroff")
    return out


def run(c: Context) -> list[tuple[str, Optional[str]]]:
    """(name, None) for a pass, (name, reason) for a failure."""
    results = []
    for name in names(c):
        reason = CHECKS[name](c)
        results.append((name, None if reason is None else reason or "failed without a reason"))
    return results


def lines(results: list[tuple[str, Optional[str]]]) -> list[str]:
    return [f"PASS {n}" if r is None else f"FAIL {n}: {r}" for n, r in results]
