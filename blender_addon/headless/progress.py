"""A one-line progress bar per step on stderr (a plain line per update when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time


class Bar:
    def __init__(self, step: str, total: int, stream=None):
        self.step, self.total = step, max(1, total)
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.start = time.monotonic()
        self.last = (-1, "")
        self.last_print = 0.0

    def __call__(self, done: int, total: int | None = None, note: str = "") -> None:
        self.total = max(1, total or self.total)
        now = time.monotonic()
        if (done, note) == self.last or (not self.tty and done == self.last[0] and now - self.last_print < 10):
            return
        self.last, self.last_print = (done, note), now
        filled = int(20 * done / self.total)
        line = f"{self.step:>13} [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} {now - self.start:6.1f}s {note}"
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
