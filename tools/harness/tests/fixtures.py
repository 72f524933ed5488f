"""The fixtures beside this file: console texts and run records (real ones from ember, or written
in its format where the case cannot be made on demand: a crash, a panic of the L1)."""
import copy
import json
from pathlib import Path

DIR = Path(__file__).resolve().parent / "fixtures"


def text(name: str) -> str:
    return (DIR / name).read_text()


def record(name: str) -> dict:
    """A fresh copy of a record fixture as JSON data, to change for a case."""
    return copy.deepcopy(json.loads(text(name)))
