"""Running one job: resolve its stage, compute the frames the store lacks, write each one atomically.

The same function runs inside the server's worker thread and embedded in `dstage run`; only the
callbacks differ (announce over the wire, or copy into the user's take folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from backend.imageio import encode_layer
from backend.ipc.take import Layer, Take
from backend.params import ParamError, parse_params
from backend.stages.base import Cancelled, StageContext, StageError, get_stage
from backend.store import JobSpec, Store


@dataclass
class JobCallbacks:
    on_frame: Callable[[int], None] = lambda frame: None
    on_progress: Callable[[int, int, int, str], None] = lambda frame, step, steps, message: None
    is_cancelled: Callable[[], bool] = lambda: False


def prepare(spec: JobSpec) -> tuple[Any, Any, dict[str, Layer]]:
    """Resolve the stage and validate the parameters; raises StageError or ParamError before any work."""
    stage = get_stage(spec.stage)
    params = parse_params(stage.Params, spec.params)
    return stage, params, stage.layers(params, tuple(spec.size))


def run_job(store: Store, spec: JobSpec, callbacks: JobCallbacks | None = None, *, models=None,
            device: str = "cpu") -> Take:
    """Compute every frame of `spec` that the store does not hold yet. Returns the job's take."""
    cb = callbacks or JobCallbacks()
    stage, params, layers = prepare(spec)
    take = store.open_take(spec, layers)
    frames = [f for f, _ in spec.frames]
    todo = [f for f in frames if not take.is_complete(f)]
    digests = spec.digests
    if not todo:
        return take
    ctx = StageContext(
        frames=frames, todo=todo, read_input=lambda frame: store.get_input(digests[frame]),
        scratch=store.scratch_dir(spec.job_id), size=tuple(spec.size), models=models, device=device,
        on_progress=cb.on_progress, is_cancelled=cb.is_cancelled,
    )
    pending = set(todo)
    for frame, arrays in stage.run(params, ctx):
        if frame not in pending:
            raise StageError(f"stage {spec.stage} yielded frame {frame} twice or outside the job", frame=frame)
        write_frame(take, frame, arrays)
        pending.discard(frame)
        cb.on_frame(frame)
        if cb.is_cancelled():
            raise Cancelled()
    if pending:
        raise StageError(f"stage {spec.stage} finished without frames {sorted(pending)[:10]}")
    return take


def write_frame(take: Take, frame: int, arrays: dict[str, np.ndarray]) -> None:
    """Write every layer of one frame. Each file is atomic; the frame counts once all are there."""
    missing = set(take.info.layers) - set(arrays)
    if missing:
        raise StageError(f"frame {frame} lacks layers {sorted(missing)}", frame=frame)
    for name, layer in take.info.layers.items():
        take.write_file(name, frame, encode_layer(layer, arrays[name]))


__all__ = ["JobCallbacks", "ParamError", "prepare", "run_job", "write_frame"]
