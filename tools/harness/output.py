"""The tools' log line (bold, on stderr, as tools/lib.sh's log) and their errors."""
from __future__ import annotations

import sys


class Fail(Exception):
    """A one-line error that ends the tool with `status` (1 unless said otherwise)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class UsageError(Fail):
    """A wrong command line: exit status 2."""

    def __init__(self, message: str):
        super().__init__(message, 2)


def log(message: str) -> None:
    sys.stderr.write(f"\033[1m==> {message}\033[0m\n")
    sys.stderr.flush()


def header_comment(path) -> str:
    """The comment block after a script's first line, without the leading '# ' (a --help)."""
    lines = []
    with open(path) as f:
        f.readline()
        for line in f:
            if not line.startswith("#"):
                break
            line = line.rstrip("\n")[1:]
            lines.append(line[1:] if line.startswith(" ") else line)
    return "\n".join(lines) + "\n"
