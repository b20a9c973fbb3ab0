"""A sliding window over a shot's frames: what a temporal filter needs, and no more, held in memory."""

from __future__ import annotations

from typing import Any, Callable


class FrameWindow:
    """Values of the frames within `radius` of a frame (by position in `frames`), computed on demand.

    Frames leave the window as soon as the frame asked for moves past them, so memory holds at most
    2 * radius + 1 values whatever the shot's length. Asked in shot order, each value is computed once.
    """

    def __init__(self, frames: list[int], radius: int, compute: Callable[[int], Any]):
        self.frames, self.radius, self.compute = list(frames), radius, compute
        self.index = {f: i for i, f in enumerate(self.frames)}
        self.held: dict[int, Any] = {}

    def around(self, frame: int) -> tuple[Any, list[Any]]:
        """(value of `frame`, values of its neighbours within the radius)."""
        i = self.index[frame]
        wanted = self.frames[max(0, i - self.radius): i + self.radius + 1]
        for f in [f for f in self.held if f not in wanted]:
            del self.held[f]
        for f in wanted:
            if f not in self.held:
                self.held[f] = self.compute(f)
        return self.held[frame], [self.held[f] for f in wanted if f != frame]
