"""ember's run record: the JSON object `ember run --report FILE` writes when ember exits (also
after a start-up error). The reader checks the whole shape and raises RecordError, one line
naming the file and the key, when the file is missing or the record is malformed.

    {"ember": {"version": "0.1.0"},
     "exit": {"reason": "power-off", "status": 0, "message": "guest powered off (ACPI S5)",
              "debug_exit_value": 0,                       only for reason debug-exit
              "signal": "TERM",                            only for reason signal
              "vcpu": 0, "exit_reason": "KVM_EXIT_SHUTDOWN", "rip": "0xffffffff81000000"
                                                           only for reason vcpu-crash; the rip
                                                           is null if ember could not read it},
     "run_time_s": 12.345,
     "vcpus": [{"id": 0, "exits": {"io_in": 0, ...}}],
     "devices": [{"id": "blk0", "pci": "00:01.0", "type": "virtio-blk",
                  "name": "virtio-blk /dev/vdb", "face": "modern" | "legacy" | null,
                  "ioeventfd": true, "activations": 1,
                  "kicks": {"ioeventfd": 100, "userspace": 0, "polled": 0},
                  "interrupts": {"msix": 90, "intx": 0},
                  "requests": 100, "bytes": 409600, "errors": 0, "dropped": 0}]}

Device ids are type-prefixed counters in command-line order (blk0, blk1, net0, rng0, console0,
balloon0); `face` is the interface of the last activation, null if the driver never activated
the device. After a start-up error, vcpus and devices are empty and the status is 1.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

EXIT_REASONS = ("power-off", "reset", "debug-exit", "vcpu-crash", "signal", "console-quit",
                "startup-error")
DEVICE_PREFIX = {"virtio-blk": "blk", "virtio-net": "net", "virtio-rng": "rng",
                 "virtio-console": "console", "virtio-balloon": "balloon", "virtio-fs": "fs",
                 "virtio-vsock": "vsock"}
FACES = ("modern", "legacy", None)
VCPU_EXITS = ("io_in", "io_out", "mmio_read", "mmio_write", "hlt", "shutdown", "system_event",
              "internal_error", "fail_entry", "interrupted", "unhandled")


class RecordError(Exception):
    pass


@dataclass(frozen=True)
class Exit:
    reason: str
    status: int
    message: str
    debug_exit_value: Optional[int] = None
    signal: Optional[str] = None
    vcpu: Optional[int] = None
    exit_reason: Optional[str] = None
    rip: Optional[str] = None

    def describe(self) -> str:
        """e.g. 'power-off: guest powered off (ACPI S5), status 0'."""
        return f"{self.reason}: {self.message}, status {self.status}"


@dataclass(frozen=True)
class Vcpu:
    id: int
    exits: dict[str, int]


@dataclass(frozen=True)
class Device:
    id: str
    pci: str
    type: str
    name: str
    face: Optional[str]
    ioeventfd: bool
    activations: int
    kicks_ioeventfd: int
    kicks_userspace: int
    kicks_polled: int
    interrupts_msix: int
    interrupts_intx: int
    requests: int
    bytes: int
    errors: int
    dropped: int


@dataclass(frozen=True)
class Record:
    version: str
    exit: Exit
    run_time_s: float
    vcpus: tuple[Vcpu, ...]
    devices: tuple[Device, ...]

    def device(self, id: str) -> Optional[Device]:
        return next((d for d in self.devices if d.id == id), None)


class _Reader:
    """Typed access to one JSON object, naming the key path in every error."""

    def __init__(self, source: str, obj: Any, path: str):
        self.source, self.path = source, path
        if not isinstance(obj, dict):
            self.fail(f"{path or 'the record'} should be an object, got {_show(obj)}")
        self.obj = obj

    def fail(self, what: str):
        raise RecordError(f"{self.source}: {what}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, types: tuple, what: str) -> Any:
        if name not in self.obj:
            self.fail(f"{self.key(name)} is missing")
        v = self.obj[name]
        # bool is an int to Python; a counter must not be true or false.
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            self.fail(f"{self.key(name)} should be {what}, got {_show(v)}")
        return v

    def integer(self, name: str) -> int:
        v = self.get(name, (int,), "a non-negative integer")
        if v < 0:
            self.fail(f"{self.key(name)} should be a non-negative integer, got {v}")
        return v

    def string(self, name: str) -> str:
        return self.get(name, (str,), "a string")

    def object(self, name: str) -> "_Reader":
        self.get(name, (dict,), "an object")
        return _Reader(self.source, self.obj[name], self.key(name))

    def array(self, name: str) -> list:
        return self.get(name, (list,), "an array")


def _show(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _exit(r: _Reader) -> Exit:
    reason = r.string("reason")
    if reason not in EXIT_REASONS:
        r.fail(f"exit.reason should be one of {', '.join(EXIT_REASONS)}, got {_show(reason)}")
    e = Exit(reason, r.integer("status"), r.string("message"))
    if reason == "debug-exit":
        return replace(e, debug_exit_value=r.integer("debug_exit_value"))
    if reason == "signal":
        return replace(e, signal=r.string("signal"))
    if reason == "vcpu-crash":
        rip = r.get("rip", (str, type(None)), "a hex address or null")
        if rip is not None and not re.fullmatch(r"0x[0-9a-f]+", rip):
            r.fail(f"exit.rip should be a hex address like 0xffffffff81000000, got {_show(rip)}")
        return replace(e, vcpu=r.integer("vcpu"), exit_reason=r.string("exit_reason"), rip=rip)
    return e


def _device(r: _Reader) -> Device:
    type_ = r.string("type")
    if type_ not in DEVICE_PREFIX:
        r.fail(f"{r.key('type')} should be one of {', '.join(DEVICE_PREFIX)}, got {_show(type_)}")
    id_ = r.string("id")
    if not re.fullmatch(re.escape(DEVICE_PREFIX[type_]) + r"[0-9]+", id_):
        r.fail(f"{r.key('id')} of a {type_} should be {DEVICE_PREFIX[type_]}N, got {_show(id_)}")
    face = r.get("face", (str, type(None)), "modern, legacy or null")
    if face not in FACES:
        r.fail(f"{r.key('face')} should be modern, legacy or null, got {_show(face)}")
    kicks, irqs = r.object("kicks"), r.object("interrupts")
    return Device(id_, r.string("pci"), type_, r.string("name"), face,
                  r.get("ioeventfd", (bool,), "true or false"), r.integer("activations"),
                  kicks.integer("ioeventfd"), kicks.integer("userspace"), kicks.integer("polled"),
                  irqs.integer("msix"),
                  irqs.integer("intx"), r.integer("requests"), r.integer("bytes"), r.integer("errors"),
                  r.integer("dropped"))


def parse(obj: Any, source: str) -> Record:
    r = _Reader(source, obj, "")
    version = r.object("ember").string("version")
    exit_ = _exit(r.object("exit"))
    run_time = r.get("run_time_s", (int, float), "a number of seconds")
    vcpus = []
    for i, v in enumerate(r.array("vcpus")):
        vr = _Reader(source, v, f"vcpus[{i}]")
        exits = vr.object("exits")
        vcpus.append(Vcpu(vr.integer("id"), {k: exits.integer(k) for k in VCPU_EXITS}))
    devices = tuple(_device(_Reader(source, d, f"devices[{i}]"))
                    for i, d in enumerate(r.array("devices")))
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        r.fail(f"devices has an id twice: {', '.join(ids)}")
    if exit_.reason == "startup-error" and (vcpus or devices or exit_.status != 1):
        r.fail("a startup-error record should have no vcpus, no devices and status 1")
    return Record(version, exit_, float(run_time), tuple(vcpus), devices)


def loads(text: str, source: str) -> Record:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{source}: not JSON ({e})") from None
    return parse(obj, source)


def load(path: Path) -> Record:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise RecordError(f"{path}: no run record (ember did not write one)") from None
    except OSError as e:
        raise RecordError(f"{path}: cannot read the run record ({e.strerror})") from None
    if not text.strip():
        # ember creates the file at start-up and writes it as it exits.
        raise RecordError(f"{path}: the run record is empty (ember did not get to write it)")
    return loads(text, str(path))


def exit_words(r: Record) -> str:
    """The record's exit as KEY=VALUE words, for shell scripts: reason=vcpu-crash status=3 ..."""
    e = r.exit
    words = [f"reason={e.reason}", f"status={e.status}"]
    for key in ("debug_exit_value", "signal", "vcpu", "exit_reason", "rip"):
        if getattr(e, key) is not None:
            words.append(f"{key}={getattr(e, key)}")
    return " ".join(words)


def main(argv: list[str]) -> int:
    """python3 -m harness.record FILE: checks FILE and prints its exit_words, or one error line."""
    if len(argv) != 1:
        print("usage: python3 -m harness.record FILE", file=sys.stderr)
        return 2
    try:
        print(exit_words(load(Path(argv[0]))))
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
