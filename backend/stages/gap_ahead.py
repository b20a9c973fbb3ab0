"""The propagate stage's next gap prepared in a thread while this gap's frames are rebuilt.

A gap's preparation (reading its frames, their chain of flows, the next keyframe's colour model) used to run
between two gaps with one core idle; here gap i+1's runs beside gap i's frames, which leave part of the second
core free. The result is the same: the thread uses the propagator's chain flows and a new keyframe view only
(`Propagator.gap_ahead`), never what `Propagator.frame` uses. At most one gap is prepared ahead (memory stays
flat in the shot's length); an error there is raised in the stage's thread when that gap's frames start, and
closing stops the thread after the frame it is reading.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from backend.pipelines.propagate import Keyframe, Propagator
from backend.read_ahead import read_ahead
from backend.stages.base import StageContext


class _Stopped(Exception):
    """The stage stopped (finished, failed or cancelled) while a gap was being read ahead."""


class GapsAhead:
    def __init__(self, ctx: StageContext, propagator: Propagator, gaps: list[tuple[int, int]],
                 keyframe: Callable[[int], Keyframe], source: Callable[[int], dict]):
        """`gaps`: the (prev, next) keyframe pairs in the order the frames will meet them; `keyframe(k)` and
        `source(f)` read a keyframe and a source frame (called in the thread too)."""
        self.ctx, self.propagator, self.gaps = ctx, propagator, gaps
        self.keyframe, self.source = keyframe, source
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gap-ahead")
        self._stop = threading.Event()
        self._ahead: tuple[tuple[int, int], Future] | None = None

    def enter(self, prev: Keyframe, nxt: Keyframe) -> None:
        """Make the gap prev..nxt ready for its frames (its flows from the thread, waiting for them if need be;
        else prepared now), then start preparing the gap after it in the thread."""
        gap = (prev.frame, nxt.frame)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == gap:
            self.propagator.use_gap_ahead(*gap, *ahead[1].result())  # the thread's error, if any, is raised here
        else:
            if ahead is not None:  # not the gap expected (frames met out of order): let it finish, unused
                ahead[1].exception()
            saved = self._saved(gap)
            if saved is not None:
                self.propagator.use_gap(*gap, saved)
            else:
                self._keep(gap, self.propagator.prepare_gap(prev, nxt, self._frames(gap)))
        index = self.gaps.index(gap) if gap in self.gaps else -1
        if 0 <= index < len(self.gaps) - 1:
            following = self.gaps[index + 1]
            self._ahead = following, self._pool.submit(self._prepare_ahead, nxt, following)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)  # its chain flows must be free before anything else uses them

    def __enter__(self) -> GapsAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _prepare_ahead(self, prev: Keyframe, gap: tuple[int, int]):
        """(flows, the next keyframe's view or None) of a later gap, in the thread."""
        saved = self._saved(gap)
        if saved is not None:
            return saved, None
        flows, view = self.propagator.gap_ahead(prev, self.keyframe(gap[1]), self._frames(gap))
        self._keep(gap, flows)
        return flows, view

    def _saved(self, gap: tuple[int, int]):
        """A gap's flows kept in the job's scratch by an earlier run (a restart reads no frame for them)."""
        return self.ctx.load_scratch(_name(gap))

    def _keep(self, gap: tuple[int, int], flows: dict) -> None:
        if flows:
            self.ctx.save_scratch(_name(gap), flows)

    def _frames(self, gap: tuple[int, int]):
        """The colour of the frames strictly inside the gap, in order, each read a thread ahead."""
        inside = [f for f in self.ctx.frames if gap[0] < f < gap[1]]
        for _, data in read_ahead(inside, self.source):
            if self._stop.is_set():
                raise _Stopped
            yield data["color"]


def _name(gap: tuple[int, int]) -> str:
    return f"gap_{gap[0]:06d}_{gap[1]:06d}"
