"""Writing a job's frames in a thread of their own, so encoding and writing frame t overlaps computing t+1.

PNG encoding releases the GIL (OpenCV), so on two cores it runs beside the stage's work. One frame is in
flight at a time: memory stays at one frame's layers more than before, however long the shot. Frames are
announced (`on_written`) in order, from the caller's thread, only once every layer file is on disk; a failed
write is raised in the caller's thread at the next submit or at `finish`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np


class FrameWriter:
    def __init__(self, write: Callable[[int, dict[str, np.ndarray]], None], on_written: Callable[[int], None]):
        self._write, self._on_written = write, on_written
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="frame-writer")
        self._pending: tuple[int, Future] | None = None

    def submit(self, frame: int, arrays: dict[str, np.ndarray]) -> None:
        """Start writing `frame` after the frame before it is written (and announced)."""
        self.flush()
        self._pending = (frame, self._pool.submit(self._write, frame, arrays))

    def flush(self) -> None:
        """Wait for the frame in flight; announce it, or raise its error."""
        if self._pending is None:
            return
        frame, future = self._pending
        self._pending = None
        future.result()
        self._on_written(frame)

    def close(self) -> None:
        """Wait for the frame in flight and announce it if it was written (the stage's own error, if one is
        being raised, stays the one raised: a failed write here is left for the next run to redo)."""
        if self._pending is not None:
            frame, future = self._pending
            self._pending = None
            if future.exception() is None:
                self._on_written(frame)
        self._pool.shutdown(wait=True)
