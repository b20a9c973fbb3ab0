"""A plain text progress bar for the command line (stderr, redrawn in place when it is a terminal)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, label: str, stream=None):
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.count = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = -1
        self._tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, count: int, note: str = "") -> None:
        self.count = count
        now = time.monotonic()
        if count == self._shown or (count < self.total and now - self._last < (0.1 if self._tty else 2.0)):
            return
        self._last, self._shown = now, count
        frac = count / self.total
        bar = "#" * int(frac * 30)
        rate = count / max(now - self.start, 1e-9)
        line = f"{self.label:>10} [{bar:<30}] {count}/{self.total} {rate:5.2f}/s {note}"
        self.stream.write(("\r" + line) if self._tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.update(self.count)
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()
