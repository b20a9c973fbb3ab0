"""Running one job: resolve its stage, compute the frames the store lacks, write each one atomically.

The same function runs inside the server's worker thread and embedded in `dstage run`; only the
callbacks differ (announce over the wire, or copy into the user's take folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from backend.frame_writer import FrameWriter
from backend.identity import declared_roles, declared_sides, models_identity, stage_version
from backend.imageio import encode_layer
from backend.ipc.take import Layer, Take
from backend.params import ParamError, params_to_json, parse_params
from backend.stages.base import Cancelled, StageContext, StageError, get_stage
from backend.store import JobSpec, Store

MIN_SIDE = 16   # pixels: optical flow (DIS) needs 12, and nothing useful is smaller


@dataclass
class JobCallbacks:
    on_frame: Callable[[int], None] = lambda frame: None
    on_progress: Callable[[int, int, int, str], None] = lambda frame, step, steps, message: None
    is_cancelled: Callable[[], bool] = lambda: False
    # Called in the writer thread once a frame's files are in the store, before `on_frame` announces it: work on
    # the stored files (`dstage run` copying them to --out) then overlaps the next frame's compute.
    on_stored: Callable[[int], None] = lambda frame: None


def prepare(spec: JobSpec) -> tuple[Any, Any, dict[str, Layer]]:
    """Resolve the stage and validate the parameters, size and side inputs; raises StageError or ParamError
    before any work."""
    stage = get_stage(spec.stage)
    params = parse_params(stage.Params, spec.params)
    width, height = spec.size
    if min(width, height) < MIN_SIDE:
        raise StageError(f"the frames are {width}x{height} px, below the {MIN_SIDE} px the stages need on each side; "
                         "scale the footage up", code="bad_input")
    wanted = declared_sides(stage, params)
    missing = [name for name in wanted if not spec.sides.get(name)]
    if missing:
        raise StageError(f"stage {spec.stage} with these parameters needs the side input {missing[0]!r} "
                         f"({wanted[missing[0]]}); give it with --side {missing[0]}=FOLDER", code="bad_input")
    unused = sorted(set(spec.sides) - set(wanted))
    if unused:
        raise StageError(f"stage {spec.stage} with these parameters reads no side input {unused[0]!r}; "
                         f"drop it{' (it takes: ' + ', '.join(wanted) + ')' if wanted else ''}", code="bad_input")
    return stage, params, stage.layers(params, (width, height))


def identify(spec: JobSpec, models: Any = None) -> tuple[Any, Any, dict[str, Layer]]:
    """`prepare`, then complete what identifies the job beyond what the client sent: canonical parameters
    (defaults filled in, so the same job has one id however it was written), the stage's version and the
    identity of every model it declares (backend/identity.py). Sets spec.params, .version and .models."""
    stage, params, layers = prepare(spec)
    spec.params = params_to_json(params)
    spec.version, spec.models = current_identity(stage, params, models)
    return stage, params, layers


def current_identity(stage: Any, params: Any, models: Any) -> tuple[int, dict]:
    """(stage version, {role: identity of its weights}) as they are now on this machine."""
    roles = declared_roles(stage, params, models)
    return stage_version(stage), (models_identity(roles, models) if roles else {})


def check_frame_size(arrays: dict, size: tuple[int, int], frame: int) -> None:
    """Every array of an input frame must be the job's declared size (width, height)."""
    for name, array in arrays.items():
        if array.ndim < 2 or (array.shape[1], array.shape[0]) != tuple(size):
            got = "x".join(map(str, array.shape[1::-1][:2])) if array.ndim >= 2 else f"shape {array.shape}"
            raise StageError(f"frame {frame}: layer {name!r} is {got}, but the job's frames are {size[0]}x{size[1]}; "
                             "give every frame and layer the size the job was submitted with", code="bad_input",
                             frame=frame)


def run_job(store: Store, spec: JobSpec, callbacks: JobCallbacks | None = None, *, models=None,
            device: str = "cpu", only=None) -> Take:
    """Compute every frame of `spec` that the store does not hold yet (of the frames in `only` when given:
    one unit of the job, see backend.stages.base.job_units). Returns the job's take."""
    cb = callbacks or JobCallbacks()
    stage, params, layers = prepare(spec)
    take = store.open_take(spec, layers)
    frames = [f for f, _ in spec.frames]
    todo = [f for f in frames if not take.is_complete(f) and (only is None or f in only)]
    digests = spec.digests
    if not todo:
        return take
    check_still_current(spec, stage, params, models)

    def read_input(frame: int) -> dict[str, np.ndarray]:
        arrays = store.get_input(digests[frame])
        check_frame_size(arrays, spec.size, frame)
        return arrays

    sides = {name: spec.side_digests(name) for name in spec.sides}
    ctx = StageContext(
        frames=frames, todo=todo, read_input=read_input,
        scratch=store.scratch_dir(spec.job_id), size=tuple(spec.size), models=models, device=device,
        on_progress=cb.on_progress, is_cancelled=cb.is_cancelled,
        sides={name: sorted(keys) for name, keys in sides.items()},
        read_side=lambda name, key: store.get_input(sides[name][key]),
    )
    pending = set(todo)
    # Frame t is encoded and written in a thread while the stage computes t+1 (see backend/frame_writer.py).
    def write(frame: int, arrays: dict[str, np.ndarray]) -> None:
        write_frame(take, frame, arrays)
        cb.on_stored(frame)

    writer = FrameWriter(write, cb.on_frame)
    try:
        for frame, arrays in stage.run(params, ctx):
            if frame not in pending:
                raise StageError(f"stage {spec.stage} yielded frame {frame} twice or outside the job", frame=frame)
            writer.submit(frame, arrays)
            pending.discard(frame)
            if cb.is_cancelled():
                writer.flush()  # the frame computed before the cancel is kept and announced
                raise Cancelled()
        writer.flush()
    finally:
        writer.close()
    if pending:
        raise StageError(f"stage {spec.stage} finished without frames {sorted(pending)[:10]}")
    return take


def check_still_current(spec: JobSpec, stage: Any, params: Any, models: Any) -> None:
    """A job computes frames under its id only while its stage version and model files are those it was
    submitted with; otherwise the frames would be stale under that id."""
    version, identity = current_identity(stage, params, models)
    if version != spec.version:
        raise StageError(f"stage {spec.stage} is now version {version}, but this job was submitted for version "
                         f"{spec.version}; submit it again (it gets a new id)", code="stale_job")
    changed = sorted(role for role in set(identity) | set(spec.models) if identity.get(role) != spec.models.get(role))
    if changed:
        raise StageError(f"the weights of model role {changed[0]!r} changed since this job was submitted; submit it "
                         "again (it gets a new id, so no stale frame is reused)", code="stale_job")


def write_frame(take: Take, frame: int, arrays: dict[str, np.ndarray]) -> None:
    """Write every layer of one frame. Each file is atomic; the frame counts once all are there."""
    missing = set(take.info.layers) - set(arrays)
    if missing:
        raise StageError(f"frame {frame} lacks layers {sorted(missing)}", frame=frame)
    for name, layer in take.info.layers.items():
        take.write_file(name, frame, encode_layer(layer, arrays[name]))


__all__ = ["JobCallbacks", "ParamError", "identify", "prepare", "run_job", "write_frame"]
