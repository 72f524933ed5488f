"""The figures: samples per key (row, monitor, face, ioeventfd, depth) and their statistics."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Results:
    samples: dict = field(default_factory=dict)  # key -> [values]
    failures: list = field(default_factory=list)

    def add(self, key: tuple, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def stats(self, key: tuple) -> dict | None:
        v = self.samples.get(key)
        if not v:
            return None
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v)}

