"""The harness's disk images and the host's checks of them after the monitor has exited.

- data (serial ember-data): random bytes, 5 MiB + 7 sectors (its capacity in sectors must arrive
  exactly, and it is not a whole number of 4 KiB pages); the guest checks its size and SHA-256.
- scratch (ember-scratch): 8 MiB of zeros; the guest writes 4 MiB at 1 MiB and reports their
  SHA-256, and the host wants exactly those bytes there and zeros elsewhere.
- readonly (ember-readonly, attached ,readonly): 1 MiB of random bytes that must not change.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

MiB = 1 << 20


@dataclass(frozen=True)
class GuestImages:
    data: Path
    data_bytes: int
    data_sha: str
    scratch: Path
    scratch_offset: int
    scratch_bytes: int
    readonly: Path
    readonly_bytes: int
    readonly_sha: str


def sha256(path: Path, offset: int = 0, length: Optional[int] = None) -> str:
    """The hex SHA-256 of the file, or of `length` bytes at `offset`."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left is None or left > 0:
            chunk = f.read(MiB if left is None else min(MiB, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


def _random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def make(work: Path, data_bytes: int = 5 * MiB + 7 * 512, scratch_total: int = 8 * MiB,
         scratch_offset: int = MiB, scratch_bytes: int = 4 * MiB,
         readonly_bytes: int = MiB) -> GuestImages:
    data, scratch, readonly = work / "data.img", work / "scratch.img", work / "readonly.img"
    data_sha = _random_file(data, data_bytes)
    with open(scratch, "wb") as f:
        f.truncate(scratch_total)
    readonly_sha = _random_file(readonly, readonly_bytes)
    return GuestImages(data, data_bytes, data_sha, scratch, scratch_offset, scratch_bytes,
                       readonly, readonly_bytes, readonly_sha)


def nonzero_outside(path: Path, offset: int, length: int) -> int:
    """How many bytes of the file outside [offset, offset + length) are not zero."""
    count = 0
    with open(path, "rb") as f:
        pos = 0
        while True:
            chunk = f.read(MiB)
            if not chunk:
                return count
            end = pos + len(chunk)
            head = chunk[:max(0, min(end, offset) - pos)]
            tail = chunk[max(0, offset + length - pos):] if end > offset + length else b""
            count += len(head) - head.count(0) + len(tail) - tail.count(0)
            pos = end


def check_scratch(img: GuestImages, reported: str) -> Optional[str]:
    """None when the scratch image holds what the guest reported writing and zeros elsewhere."""
    if not reported:
        return "the guest reported no SHA-256 of what it wrote (no 'host: blk-scratch-sha256=' line)"
    actual = sha256(img.scratch, img.scratch_offset, img.scratch_bytes)
    if actual != reported:
        return (f"{img.scratch} has SHA-256 {actual} at {img.scratch_offset}+{img.scratch_bytes}, "
                f"the guest wrote {reported}")
    nonzero = nonzero_outside(img.scratch, img.scratch_offset, img.scratch_bytes)
    if nonzero:
        return (f"{img.scratch} has {nonzero} non-zero bytes outside the {img.scratch_bytes} the "
                f"guest wrote at {img.scratch_offset}")
    return None


def check_readonly(img: GuestImages) -> Optional[str]:
    actual = sha256(img.readonly)
    if actual != img.readonly_sha:
        return f"the read-only image {img.readonly} changed: SHA-256 {actual}, was {img.readonly_sha}"
    return None


def check_data(img: GuestImages) -> Optional[str]:
    actual = sha256(img.data)
    if actual != img.data_sha:
        return (f"the data image {img.data} changed although the guest only read it: SHA-256 "
                f"{actual}, was {img.data_sha}")
    return None
