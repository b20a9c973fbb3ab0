"""Writing a job's frames in a thread of their own, so encoding and writing frame t overlaps computing t+1.

PNG encoding releases the GIL (OpenCV), so on two cores it runs beside the stage's work. Up to `ahead` frames
(2) are in flight, written one after another by the one thread: a frame that computes quickly (a keyframe, a
copy) does not wait behind the write of a slow one. Memory stays at that many frames' layers more than before,
however long the shot. Frames are announced (`on_written`) in order, from the caller's thread, only once every
layer file is on disk; a failed write is raised in the caller's thread at a later submit or at `flush`.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np


class FrameWriter:
    def __init__(self, write: Callable[[int, dict[str, np.ndarray]], None], on_written: Callable[[int], None],
                 ahead: int = 2, threads: int = 1, name: str = "frame-writer"):
        """`threads` > 1 writes that many frames at once (for writes whose order on disk does not matter, such
        as inputs stored by their digest); they are still announced in order."""
        self._write, self._on_written, self._ahead = write, on_written, max(1, ahead)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._pending: deque[tuple[int, Future]] = deque()

    def submit(self, frame: int, arrays: dict[str, np.ndarray]) -> None:
        """Queue `frame`'s write behind those in flight; waits only while `ahead` frames are in flight."""
        while self._pending and (self._pending[0][1].done() or len(self._pending) >= self._ahead):
            self._finish_first()
        self._pending.append((frame, self._pool.submit(self._write, frame, arrays)))

    def flush(self) -> None:
        """Wait for every frame in flight; announce each, in order, or raise the first error."""
        while self._pending:
            self._finish_first()

    def _finish_first(self) -> None:
        frame, future = self._pending.popleft()
        future.result()
        self._on_written(frame)

    def close(self) -> None:
        """Wait for the frames in flight and announce those that were written (the stage's own error, if one is
        being raised, stays the one raised: a failed write here is left for the next run to redo)."""
        while self._pending:
            frame, future = self._pending.popleft()
            if future.exception() is None:
                self._on_written(frame)
        self._pool.shutdown(wait=True)
