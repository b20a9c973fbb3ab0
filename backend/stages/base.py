"""What a stage is: the adapter between the job runner and a pure pipeline.

A pipeline (`backend/pipelines/*.py`) takes arrays and a parameters dataclass and returns arrays. A stage
wraps one for the job runner: it declares its parameters and the layers it writes, and its `run` yields
finished frames one at a time, so frames stream to the store and memory stays flat as a shot grows.

Arrays a stage yields, by layer name:
    color   HxWx3 uint8, straight colour
    alpha   HxW float32 in [0, 1]
    depth   HxW float32, in the units of the layer (its `near`/`far` fix the png16 encoding)
    other   HxW or HxWx3, uint8 or float32 in [0, 1] (control maps: normal, lineart, pose ...)

Inputs a stage reads with `ctx.read_input(frame)` use the same names: `color` always, plus whatever
layers the source has (a take rendered by the add-on brings depth, normal, segmentation, mask ...).

What a stage declares so that a job's id covers everything its output depends on (backend/identity.py):
    version        an int, bumped whenever a change to the stage or a pipeline it runs alters its output
                   (an old take is then recomputed instead of replayed); `register` refuses a stage without one
    model_roles    (params, models) -> the model registry roles it loads for these parameters (or
                   `rembg:<name>` for one of rembg's own models); the identity of their weights joins the id.
                   Leave it out only when the stage loads no model.
    side_inputs    (params) -> {name: what it holds} for the side inputs it needs (keyframes, a clean
                   plate, reference images): images the client uploads into the store like frames, read
                   with `ctx.read_side(name, key)` (keys: frame numbers, or 0 for a single image; the keys
                   present are in `ctx.sides[name]`), their digests in the id. Never a path on the server:
                   `dstage run --side NAME=PATH` reads the folder or image on the client and uploads it.

What a stage may declare so that a job can be split into tasks run apart (a cluster's workers, issue 17):
    per_frame      True when each output frame depends on its own input frame only: the job then splits
                   into ranges of frames (`job_units`)
    units          (params, frames) -> lists of frames that must run together (keyframe gaps, video
                   segments, diffusion grids); every frame in exactly one list
    A stage that declares neither runs as one unit: splitting it could change its output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Protocol

import numpy as np

from backend.errors import Cancelled, StageError  # noqa: F401  (re-exported: stages import them from here)
from backend.ipc.take import Layer


@dataclass
class StageContext:
    """Everything a running stage may use; built by the job runner (embedded or in the server)."""

    frames: list[int]                                    # every frame of the job, in order
    todo: list[int]                                      # frames still missing from the store
    read_input: Callable[[int], dict[str, np.ndarray]]   # the source's arrays for one frame
    scratch: Path                                        # job-private folder that survives restarts
    size: tuple[int, int]                                # (width, height) of the source frames
    models: Any = None                                   # backend.models registry, when the stage needs one
    device: str = "cpu"
    sides: dict[str, list[int]] = field(default_factory=dict)          # side input -> its keys (frame numbers)
    read_side: Callable[[str, int], dict[str, np.ndarray]] = None      # (side input, key) -> its arrays
    on_progress: Callable[[int, int, int, str], None] = lambda frame, step, steps, message: None
    is_cancelled: Callable[[], bool] = lambda: False

    def progress(self, frame: int, step: int, steps: int, message: str = "") -> None:
        self.on_progress(frame, step, steps, message)

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise Cancelled()

    def save_scratch(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Keep an intermediate result (a stylized keyframe, a fitted scale) across restarts, atomically."""
        import io

        from backend.ipc.take import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.scratch / f"{name}.npz", buf.getbuffer())

    def load_scratch(self, name: str) -> dict[str, np.ndarray] | None:
        path = self.scratch / f"{name}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


class Stage(Protocol):
    """The interface every stage implements (see backend/stages/matte.py for a complete one)."""

    name: ClassVar[str]
    Params: ClassVar[type]          # a dataclass; see backend.params
    summary: ClassVar[str]          # one line for `dstage stages` and the add-on
    version: ClassVar[int]          # bump when the output for the same inputs changes (see above)

    def model_roles(self, params: Any, models: Any) -> list[str]:
        """Optional: the registry roles this job loads (its weights' identity joins the job id)."""

    def side_inputs(self, params: Any) -> dict[str, str]:
        """Optional: the side inputs this job needs, by name, with what each holds."""

    def layers(self, params: Any, size: tuple[int, int]) -> dict[str, Layer]:
        """The take layers this stage writes for these parameters and source size (width, height)."""

    def run(self, params: Any, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield (frame, arrays by layer) for every frame in ctx.todo, in any order, each exactly once."""


@dataclass(frozen=True)
class Unit:
    """Frames of a job that one task can compute on its own: `frames` it owns, `todo` those not stored yet."""

    frames: tuple[int, ...]
    todo: tuple[int, ...]


def job_units(stage: Any, params: Any, frames: list[int], todo: list[int], chunk: int = 8) -> list[Unit]:
    """Split a job into independent units along what its stage declares (see the module docstring); units
    whose frames are all stored already are left out, so a repeated job computes nothing."""
    if chunk < 1:
        raise StageError(f"a unit needs at least 1 frame, got chunk={chunk}; give a chunk of 1 or more",
                         code="bad_input")
    declared = getattr(stage, "units", None)
    if declared is not None:
        groups = [list(group) for group in declared(params, list(frames))]
        owned = [f for group in groups for f in group]
        if sorted(owned) != sorted(frames):
            raise StageError(f"stage {stage.name} declared units that do not cover each frame of the job exactly "
                             "once; fix its units()", code="internal")
    elif getattr(stage, "per_frame", False):
        groups = [list(frames[i:i + chunk]) for i in range(0, len(frames), chunk)]
    else:
        groups = [list(frames)]
    missing = set(todo)
    units = [Unit(tuple(group), tuple(f for f in group if f in missing)) for group in groups]
    return [unit for unit in units if unit.todo]


def flow_layers(names, depth_near: float, depth_far: float) -> dict[str, Layer]:
    """The take layers of a flow stage (propagate, retime): colour, plus alpha and depth when asked for."""
    out = {"color": Layer("png8")}
    if "alpha" in names:
        out["alpha"] = Layer("png8")
    if "depth" in names:
        out["depth"] = Layer("png16", near=depth_near, far=depth_far)
    return out


_REGISTRY: dict[str, Stage] = {}


def register(stage_cls: type) -> type:
    """Class decorator: make a stage reachable by name from the server and `dstage run`."""
    from backend.identity import stage_version

    stage_version(stage_cls)  # a stage without a version could never invalidate its old takes
    _REGISTRY[stage_cls.name] = stage_cls()
    return stage_cls


def get_stage(name: str) -> Stage:
    from backend import stages  # noqa: F401  (importing the package registers every stage)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise StageError(
            f"unknown stage {name!r}; available: {', '.join(sorted(_REGISTRY))}", code="unknown_stage"
        ) from None


def all_stages() -> dict[str, Stage]:
    from backend import stages  # noqa: F401

    return dict(sorted(_REGISTRY.items()))


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
