"""Running one backend stage over a shot's frames into a take folder, with progress and resumption.

A job is submitted with the digests of its inputs; the backend keeps every finished frame, and frames
already in the local take are not fetched again, so running the same job twice costs a digest pass.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from backend.ipc.client import Client
from backend.ipc.digest import digest_arrays
from backend.ipc.remote_job import RemoteJob
from backend.ipc.take import Take, TakeError
from blender_addon.headless.errors import ShotError
from blender_addon.headless.inputs import FrameInput

Progress = Callable[[int, int, str], None]   # (frames done, frames in all, note)


class _Job(RemoteJob):
    """A RemoteJob that remembers which frame an error event named (the event carries it)."""

    error_frame: int | None = None

    def _error(self, msg) -> None:
        if msg.get("frame") is not None:
            self.error_frame = msg.get("frame")
        super()._error(msg)


def _reader(step: str, source: FrameInput):
    def read(frame: int):
        try:
            return source.read(frame)
        except Exception as e:  # a bad input file: name the step and the frame, not a traceback
            raise ShotError(step, f"cannot read its input: {e}", frame=frame) from e
    return read


def run_stage(client: Client, stage: str, params: dict, source: FrameInput, out_dir: Path, *,
              step: str | None = None, frames: list[int] | None = None, progress: Progress | None = None,
              stall_s: float = 600.0, sides: dict | None = None) -> tuple[Take, dict]:
    """Run `stage` over `frames` (default: all of the source) into `out_dir`. Returns the take and counts:
    {"frames": n, "kept": frames already in the take before, "fetched": frames brought back now}.

    A take in `out_dir` from another job (other parameters, or a newer stage version) is replaced: the
    backend's store still has whatever it computed, so only the copying is redone. `sides`: side inputs as
    RemoteJob takes them, {name: ({key: digest}, read(key) -> arrays)} (the matte's clean plate)."""
    try:
        return _run_stage(client, stage, params, source, out_dir, step, frames, progress, stall_s, sides)
    except TakeError as e:
        if "another job's take" not in str(e):
            raise
        shutil.rmtree(out_dir)
        return _run_stage(client, stage, params, source, out_dir, step, frames, progress, stall_s, sides)


def _run_stage(client, stage, params, source, out_dir, step, frames, progress, stall_s, sides=None) -> tuple[Take, dict]:
    step = step or stage
    frames = frames or source.frames
    read = _reader(step, source)
    digests = {frame: digest_arrays(read(frame)) for frame in frames}
    job = _Job(client, stage=stage, params=params, digests=digests, read_input=read, size=source.size,
               out_dir=out_dir, fps=source.fps, source=source.description, sides=sides)
    last_change, last_count = time.monotonic(), -1
    while job.active:
        job.step(0.1)
        count = len(job.local_done)
        if count != last_count:
            last_change, last_count = time.monotonic(), count
        elif time.monotonic() - last_change > stall_s:
            job.cancel()
            raise ShotError(step, f"no frame came back for {stall_s:.0f} s (backend at {client.url}); "
                                  "is it still running? run again to continue")
        if progress is not None:
            note = ""
            if job.progress.get("steps"):
                note = f"frame {job.progress.get('frame')} step {job.progress.get('step')}/{job.progress.get('steps')}"
            progress(count, len(frames), note)
        time.sleep(0.002)
    if job.state != "done":
        code, message = job.error or (job.state, "the job stopped")
        raise ShotError(step, f"{message} [{code}]", frame=job.error_frame, code=code)
    kept = job.kept or 0
    return job.take, {"frames": len(frames), "kept": kept, "fetched": len(frames) - kept}

