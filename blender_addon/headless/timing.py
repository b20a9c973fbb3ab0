"""Per-step wall times of a shot, and the table printed at its end."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class StepTime:
    step: str
    seconds: float
    note: str = ""


@dataclass
class TimeTable:
    rows: list[StepTime] = field(default_factory=list)

    @contextmanager
    def step(self, name: str):
        """Time the block; the block may set `row.note` (what was done, what was skipped)."""
        row = StepTime(name, 0.0)
        start = time.monotonic()
        try:
            yield row
        finally:
            row.seconds = time.monotonic() - start
            self.rows.append(row)

    @property
    def total(self) -> float:
        return sum(r.seconds for r in self.rows)

    def format(self) -> str:
        width = max([len(r.step) for r in self.rows] + [5])
        lines = [f"{'step':<{width}}  {'seconds':>8}  note", f"{'-' * width}  {'-' * 8}  ----"]
        lines += [f"{r.step:<{width}}  {r.seconds:8.1f}  {r.note}" for r in self.rows]
        lines.append(f"{'total':<{width}}  {self.total:8.1f}")
        return "\n".join(lines)

    def to_json(self) -> list[dict]:
        return [{"step": r.step, "seconds": round(r.seconds, 3), "note": r.note} for r in self.rows]
