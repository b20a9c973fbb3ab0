"""JobDriver: runs a plan's backend jobs a slice at a time, then assembles their layers into one take.

Blender's modal operators call `tick(budget_s)` from a timer; scripts and tests call `run()` (the same
ticks in a loop). Each tick does at most about `budget_s` of work: digesting source frames, one
`RemoteJob.step`, or copying finished files, so the interface stays responsive while a job runs.
The source is read twice (once to digest, once for the frames the backend lacks) rather than held in
memory: frames stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..ipc import Client, RemoteJob, Take, TakeInfo, digest_arrays
from .plan import Plan

CANCEL_WAIT_S = 3.0   # how long to wait for the backend to confirm a cancel before letting go
UPLOAD_WINDOW = 2     # frames in flight each way; small, so one RemoteJob.step stays short


@dataclass
class FrameSource:
    frames: list[int]
    size: tuple[int, int]                              # (width, height)
    fps: float
    read: Callable[[int], dict[str, np.ndarray]]       # frame -> {"color": HxWx3 uint8, ...}
    description: dict = field(default_factory=dict)


class JobDriver:
    def __init__(self, plan: Plan, source: FrameSource, take_dir: str | Path, connect: Callable[[], Client]):
        self.plan = plan
        self.source = source
        self.take_dir = Path(take_dir)
        self._connect = connect
        self.client: Client | None = None
        self.state = "reading"
        self.error: str | None = None
        self.digests: dict[int, str] = {}
        self.job_index = 0
        self.job: RemoteJob | None = None
        self.finished: dict[str, Take] = {}
        self.take: Take | None = None
        self._to_read = list(source.frames)
        self._to_copy: list[int] = []
        self._cancel_deadline = 0.0

    # -- public ------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state in ("reading", "running", "assembling", "cancelling")

    @property
    def fraction(self) -> float:
        total = len(self.source.frames)
        if self.state == "reading":
            return 0.1 * len(self.digests) / total
        if self.state in ("running", "cancelling"):
            job_part = self.job.fraction if self.job is not None else 0.0
            return 0.1 + 0.85 * (self.job_index + job_part) / len(self.plan.jobs)
        if self.state == "assembling":
            return 0.95 + 0.05 * (1 - len(self._to_copy) / total)
        return 1.0 if self.state == "done" else 0.0

    @property
    def label(self) -> str:
        if self.state == "reading":
            return f"reading frame {len(self.digests)}/{len(self.source.frames)}"
        if self.state == "running" and self.job is not None:
            spec = self.plan.jobs[self.job_index]
            note = f"{self.job.state}, {len(self.job.local_done)}/{len(spec.frames)} frames"
            step = self.job.progress
            if step.get("steps", 0) > 1:
                note += f", frame {step.get('frame')} step {step.get('step')}/{step.get('steps')}"
            return f"{spec.name} ({self.job_index + 1}/{len(self.plan.jobs)}): {note}"
        return self.state

    def tick(self, budget_s: float = 0.01) -> str:
        deadline = time.monotonic() + budget_s
        try:
            if self.state == "reading":
                self._read(deadline)
            elif self.state == "running":
                self._run(deadline)
            elif self.state == "assembling":
                self._assemble(deadline)
            elif self.state == "cancelling":
                self._await_cancel()
        except Exception as e:  # a failure of any part ends the job with a message, never a dead timer
            self._fail(f"{type(e).__name__}: {e}")
        return self.state

    def run(self, budget_s: float = 0.05, timeout_s: float | None = None) -> str:
        """Tick until finished (for scripts, EXEC and tests)."""
        start = time.monotonic()
        while self.active:
            self.tick(budget_s)
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                self.cancel()
                self._fail(f"gave up after {timeout_s:.0f} s")
            time.sleep(0.001)
        return self.state

    def cancel(self) -> None:
        """Stop: tell the backend to cancel its job, then wait (a few ticks) for it to confirm."""
        if not self.active or self.state == "cancelling":
            return
        if self.job is not None and self.job.job_id is not None and self.job.active:
            self.job.cancel()
            self.state = "cancelling"
            self._cancel_deadline = time.monotonic() + CANCEL_WAIT_S
        else:
            self._finish("cancelled")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- phases ------------------------------------------------------------------------------
    def _read(self, deadline: float) -> None:
        while self._to_read and time.monotonic() < deadline:
            frame = self._to_read.pop(0)
            self.digests[frame] = digest_arrays(self.source.read(frame))
        if not self._to_read:
            self.client = self._connect()
            self.state = "running"
            self._start_job()

    def _start_job(self) -> None:
        spec = self.plan.jobs[self.job_index]
        self.job = RemoteJob(self.client, stage=spec.stage, params=spec.params,
                             digests={f: self.digests[f] for f in spec.frames}, read_input=self.source.read,
                             size=self.source.size, out_dir=self.take_dir / "jobs" / spec.name,
                             fps=self.source.fps, source=self.source.description, window=UPLOAD_WINDOW)

    def _run(self, deadline: float) -> None:
        state = self.job.step(max(0.0, deadline - time.monotonic()))
        if state == "done":
            self.finished[self.plan.jobs[self.job_index].name] = self.job.take
            self.job_index += 1
            if self.job_index < len(self.plan.jobs):
                self._start_job()
            else:
                self.job = None
                self._begin_assembly()
        elif state == "failed":
            code, message = self.job.error or ("failed", "")
            self._fail(f"backend stage {self.plan.jobs[self.job_index].stage} failed [{code}]: {message}")
        elif state == "cancelled":  # cancelled on the backend by someone else
            self._finish("cancelled")

    def _await_cancel(self) -> None:
        for msg in self.client.poll(0):
            if msg.type in ("cancelled", "done", "error") and msg.get("job_id") == self.job.job_id:
                self._finish("cancelled")
                return
        if time.monotonic() > self._cancel_deadline:
            self._finish("cancelled")

    def _begin_assembly(self) -> None:
        self.close()
        sources = self.plan.layer_sources()
        layers = {layer: self.finished[job].info.layers[layer] for layer, job in sources.items()}
        frames = self.source.frames
        info = TakeInfo(frame_start=frames[0], frame_end=frames[-1], width=self.source.size[0],
                        height=self.source.size[1], fps=self.source.fps, layers=layers, stage="+".join(
                            j.stage for j in self.plan.jobs), source=self.source.description,
                        params={j.name: j.params for j in self.plan.jobs},
                        versions={j.name: self.finished[j.name].info.job_id for j in self.plan.jobs})
        self.take = Take.create(self.take_dir, info)
        self._layer_sources = sources
        self._to_copy = list(frames)
        self.state = "assembling"

    def _assemble(self, deadline: float) -> None:
        while self._to_copy and time.monotonic() < deadline:
            frame = self._to_copy.pop(0)
            for layer, job in self._layer_sources.items():
                src = self.finished[job].path(layer, frame)
                self.take.write_file(layer, frame, src.read_bytes())
        if not self._to_copy:
            self._finish("done")

    def _fail(self, message: str) -> None:
        self.error = message
        self._finish("failed")

    def _finish(self, state: str) -> None:
        self.state = state
        self.close()
