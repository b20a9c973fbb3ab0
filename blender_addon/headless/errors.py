"""The one error a shot reports: which step failed, on which frame, and what to do."""

from __future__ import annotations


class ShotError(RuntimeError):
    def __init__(self, step: str, message: str, frame: int | None = None, code: str = ""):
        where = f" at frame {frame}" if frame is not None else ""
        super().__init__(f"{step} failed{where}: {message}")
        self.step = step
        self.frame = frame
        self.detail = message
        self.code = code  # the backend's error code, when the backend reported it
