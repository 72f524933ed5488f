"""--api: ember in the L1 configured and started through its API socket, as Firecracker's
getting-started guide does it with curl (tests/boot/l1-api sends the requests), from the plan:
the boot source, each disk as a drive (the data disk the root device), the network interface and
the balloon of --net-balloon, the machine configuration, then InstanceStart. ember itself gets
only the options the API has no field for (--rng, --log-level)."""
from __future__ import annotations

import json

from . import plan as plan_
from .options import Options
from .output import UsageError

SOCKET = "/tmp/firecracker.socket"
# The options the requests carry instead (each with its value).
_MACHINE_OPTIONS = ("--cpus", "--memory", "-m", "--net", "--balloon")


def ember_args(p: plan_.Plan) -> list[str]:
    """`ember run` for --api: the socket, and the plan's options that are not the machine's."""
    out = ["run", "--api-sock", SOCKET, "--id", "linux-boot-l1"]
    args = iter(p.ember_args)
    for a in args:
        name = a.split("=", 1)[0]
        if name in _MACHINE_OPTIONS:
            if "=" not in a:
                next(args, None)
            continue
        out.append(a)
    return out


def _drive(i: int, d: plan_.Disk) -> dict:
    drive_id, read_only = f"disk{i}", False
    for opt in d.options.split(","):
        if not opt:
            continue
        if opt.startswith("serial="):
            drive_id = opt[len("serial="):]
        elif opt == "readonly":
            read_only = True
        else:
            raise UsageError(f"--api: the disk option '{opt}' has no field in the API's drives")
    # l1-init turns @l1disk:SERIAL into the L1's device of that serial.
    return {"drive_id": drive_id, "path_on_host": f"@l1disk:ember-l1-disk{i}",
            "is_root_device": i == 0, "is_read_only": read_only}


def requests(o: Options, p: plan_.Plan) -> list[tuple[str, str, dict]]:
    """(method, path, body) in the order they are sent."""
    out = [("PUT", "/boot-source", {"kernel_image_path": "/ember/vmlinux",
                                    "initrd_path": "/ember/l2-initramfs.cpio",
                                    "boot_args": p.cmdline})]
    for i, d in enumerate(p.disks):
        drive = _drive(i, d)
        out.append(("PUT", f"/drives/{drive['drive_id']}", drive))
    if o.net_balloon:
        out.append(("PUT", "/network-interfaces/eth0",
                    {"iface_id": "eth0", "host_dev_name": plan_.NET_TAP,
                     "guest_mac": plan_.NET_MAC}))
        out.append(("PUT", "/balloon", {"amount_mib": p.balloon_kib // 1024,
                                        "deflate_on_oom": False}))
    out.append(("PUT", "/machine-config", {"vcpu_count": int(o.cpus),
                                           "mem_size_mib": o.mem_kib // 1024}))
    out.append(("PUT", "/actions", {"action_type": "InstanceStart"}))
    return out


def text(reqs: list[tuple[str, str, dict]]) -> str:
    """/ember/api: one request per line, `METHOD PATH BODY` (the body JSON on one line)."""
    return "".join(f"{m} {path} {json.dumps(body, separators=(', ', ': '))}\n"
                   for m, path, body in reqs)
