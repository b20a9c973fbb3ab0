"""JobDriver: runs a plan's backend jobs a slice at a time, then assembles their layers into one take.

Blender's modal operators call `tick(budget_s)` from a timer; scripts and tests call `run()` (the same
ticks in a loop). Each tick does at most about `budget_s` of work: digesting source frames, one
`RemoteJob.step`, or copying finished files, so the interface stays responsive while a job runs.
The source is read twice (once to digest, once for the frames the backend lacks) rather than held in
memory: frames stream.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..ipc import Client, RemoteJob, Take, TakeInfo, digest_arrays, digest_json
from .plan import Plan

CANCEL_WAIT_S = 3.0   # how long to wait for the backend to confirm a cancel before letting go
UPLOAD_WINDOW = 1     # frames in flight each way: one frame read or written per step keeps ticks short
GIVE_UP_S = 60.0      # a backend silent this long (through reconnects) fails the job


@dataclass
class FrameSource:
    frames: list[int]
    size: tuple[int, int]                              # (width, height)
    fps: float
    read: Callable[[int], dict[str, np.ndarray]]       # frame -> {"color": HxWx3 uint8, ...}
    description: dict = field(default_factory=dict)


class JobDriver:
    def __init__(self, plan: Plan, source: FrameSource, take_dir: str | Path, connect: Callable[[], Client],
                 give_up_s: float = GIVE_UP_S, read_layer: Callable[[Take, str, int], np.ndarray] | None = None,
                 read_image: Callable[[str], dict[str, np.ndarray]] | None = None):
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
        self.sent_params: dict[str, dict] = {}
        self.take: Take | None = None
        self._to_read = list(source.frames)
        self._to_copy: list[int] = []
        self._cancel_deadline = 0.0
        self.give_up_s = give_up_s
        self._heard_at = 0.0
        self.read_layer = read_layer       # (take, layer, frame) -> array: how a job reads an earlier job's take
        self.read_image = read_image       # path -> {"color": ...}: how a job's side input (a clean plate) is read
        self._inputs: FrameSource | None = None   # the running job's input when it reads earlier jobs' takes
        self._input_digests: dict[int, str] = {}
        self._inputs_to_read: list[int] = []

    # -- public ------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state in ("reading", "reading_takes", "running", "assembling", "cancelling")

    @property
    def fraction(self) -> float:
        total = len(self.source.frames)
        if self.state == "reading":
            return 0.1 * len(self.digests) / total
        if self.state in ("running", "reading_takes", "cancelling"):
            job_part = self.job.fraction if self.job is not None else 0.0
            return 0.1 + 0.85 * (self.job_index + job_part) / len(self.plan.jobs)
        if self.state == "assembling":
            return 0.95 + 0.05 * (1 - len(self._to_copy) / total)
        return 1.0 if self.state == "done" else 0.0

    @property
    def label(self) -> str:
        if self.state == "reading":
            return f"reading frame {len(self.digests)}/{len(self.source.frames)}"
        if self.state == "reading_takes":
            spec = self.plan.jobs[self.job_index]
            return f"{spec.name}: reading frame {len(self._input_digests)}/{len(spec.frames)} of {', '.join(spec.reads)}"
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
            elif self.state == "reading_takes":
                self._read_takes(deadline)
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
            self._heard_at = time.monotonic()
            self._next_job()

    def _next_job(self) -> None:
        """Start the plan's next job: at once when it reads the footage (digested already), after digesting
        its input a few frames a tick when it reads earlier jobs' takes."""
        spec = self.plan.jobs[self.job_index]
        if not spec.reads:
            self._inputs = None
            self.state = "running"
            self._start_job()
            return
        if self.read_layer is None:
            raise RuntimeError(f"job {spec.name} reads {', '.join(spec.reads)} but the driver has no take reader")
        self._inputs = self._take_source(spec)
        self._input_digests, self._inputs_to_read = {}, list(spec.frames)
        self.state = "reading_takes"

    def _take_source(self, spec) -> FrameSource:
        takes = [self.finished[name] for name in spec.reads]

        def read(frame: int) -> dict[str, np.ndarray]:
            arrays = {}
            for take in takes:
                for layer in take.info.layers:
                    arrays[layer] = self.read_layer(take, layer, frame)
            return arrays

        first = takes[0].info
        return FrameSource(list(spec.frames), (first.width, first.height), self.source.fps, read,
                           {"kind": "takes", "jobs": list(spec.reads)})

    def _read_takes(self, deadline: float) -> None:
        while self._inputs_to_read and time.monotonic() < deadline:
            frame = self._inputs_to_read.pop(0)
            self._input_digests[frame] = digest_arrays(self._inputs.read(frame))
        if not self._inputs_to_read:
            self.state = "running"
            self._start_job()

    def _start_job(self) -> None:
        spec = self.plan.jobs[self.job_index]
        params = dict(spec.params)
        source = self._inputs or self.source
        digests = {f: (self._input_digests if self._inputs else self.digests)[f] for f in spec.frames}
        # One folder per distinct job, so a re-run with other settings starts its own (and a re-run with
        # the same settings resumes: frames already here are not fetched again).
        self.sent_params[spec.name] = params
        sides = self._sides(spec)
        key = digest_json([spec.stage, params, sorted(digests.items()),
                           {name: keyed for name, (keyed, _) in sorted(sides.items())}])[:12]
        self.job = RemoteJob(self.client, stage=spec.stage, params=params,
                             digests=digests, read_input=source.read,
                             size=source.size, out_dir=self.take_dir / "jobs" / f"{spec.name}-{key}",
                             fps=source.fps, source=source.description, window=UPLOAD_WINDOW, sides=sides)

    def _sides(self, spec) -> dict:
        """The job's side inputs for RemoteJob: {name: ({0: digest}, read)}, each one image read once here."""
        sides = {}
        for name, path in spec.sides.items():
            if self.read_image is None:
                raise RuntimeError(f"job {spec.name} has a side input {name!r} but the driver has no image reader")
            arrays = self.read_image(path)
            sides[name] = ({0: digest_arrays(arrays)}, lambda key, arrays=arrays: arrays)
        return sides

    def _run(self, deadline: float) -> None:
        # One RemoteJob pass (drain what arrived, send what the window allows) at a time, until the
        # budget is spent or a pass changes nothing: an idle wait costs no CPU.
        while True:
            before = self._job_position()
            state = self.job.step(0.0)
            if state != "running" and state not in ("submitting", "uploading"):
                break
            if time.monotonic() >= deadline or self._job_position() == before:
                break
        if self.client.connected:  # heard from since the last (re)connect
            self._heard_at = max(self._heard_at, self.client.last_heard)
        elif time.monotonic() - self._heard_at > self.give_up_s:
            self.cancel()
            self._fail(f"the backend at {self.client.url} has not answered for {self.give_up_s:.0f} s; "
                       "start it (Stage > Backend > Start Backend) or check Backend Address in the preferences")
            return
        if state == "done":
            self.finished[self.plan.jobs[self.job_index].name] = self.job.take
            self.job_index += 1
            if self.job_index < len(self.plan.jobs):
                self._next_job()
            else:
                self.job = None
                self._begin_assembly()
        elif state == "failed":
            code, message = self.job.error or ("failed", "")
            self._fail(f"backend stage {self.plan.jobs[self.job_index].stage} failed [{code}]: {message}")
        elif state == "cancelled":  # cancelled on the backend by someone else
            self._finish("cancelled")

    def _job_position(self) -> tuple:
        job = self.job
        return (job.state, len(job.local_done), len(job.uploads), len(job.fetches), len(job.in_flight_up),
                len(job.in_flight_down), job.progress.get("frame"), job.progress.get("step"))

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
        # an upscaled colour is larger than the footage: the take's size is its colour's
        colour = self.finished[sources["color"]].path("color", frames[0]) if "color" in sources else None
        width, height = (png_size(colour) if colour is not None else None) or self.source.size
        info = TakeInfo(frame_start=frames[0], frame_end=frames[-1], width=width,
                        height=height, fps=self.source.fps, layers=layers, stage="+".join(
                            j.stage for j in self.plan.jobs), source=self.source.description,
                        params=dict(self.sent_params),
                        versions={j.name: self.finished[j.name].info.job_id for j in self.plan.jobs})
        self.take = Take.create(self.take_dir, info)
        self._layer_sources = sources
        self._to_copy = list(frames)
        self.state = "assembling"

    def _assemble(self, deadline: float) -> None:
        while self._to_copy and time.monotonic() < deadline:
            frame = self._to_copy.pop(0)
            for layer, job in self._layer_sources.items():
                link_or_copy(self.finished[job].path(layer, frame), self.take, layer, frame)
        if not self._to_copy:
            self._finish("done")

    def _fail(self, message: str) -> None:
        self.error = message
        self._finish("failed")

    def _finish(self, state: str) -> None:
        self.state = state
        self.close()


def png_size(path: Path) -> tuple[int, int] | None:
    """A PNG's (width, height) from its header, without decoding it."""
    import struct

    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def link_or_copy(src: Path, take: Take, layer: str, frame: int) -> None:
    """Put a finished job's file into the take: a hard link (instant; the file is already complete and
    synced), or an atomic copy where links are not possible (another file system)."""
    dest = take.path(layer, frame)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.link")
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(src, tmp)
        os.replace(tmp, dest)
    except OSError:
        take.write_file(layer, frame, src.read_bytes())
