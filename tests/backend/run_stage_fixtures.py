"""Running a stage the way the job runner does, on frames held in a dict (shared by the stage tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.params import parse_params
from backend.stages.base import StageContext, get_stage


def make_context(inputs: dict[int, dict[str, np.ndarray]], scratch: Path, models=None, todo=None) -> StageContext:
    frames = sorted(inputs)
    height, width = inputs[frames[0]]["color"].shape[:2]
    reads: list[int] = []

    def read_input(frame: int) -> dict[str, np.ndarray]:
        reads.append(frame)
        return {name: array.copy() for name, array in inputs[frame].items()}

    ctx = StageContext(
        frames=frames, todo=list(todo if todo is not None else frames), read_input=read_input,
        scratch=Path(scratch), size=(width, height), models=models,
    )
    ctx.reads = reads  # which frames the stage read, in order (for streaming checks)
    return ctx


def run_stage(name: str, params: dict, ctx: StageContext) -> dict[int, dict[str, np.ndarray]]:
    stage = get_stage(name)
    parsed = parse_params(stage.Params, params)
    stage.layers(parsed, ctx.size)  # the runner asks for the layers before any frame
    out = {}
    for frame, arrays in stage.run(parsed, ctx):
        assert frame not in out, f"frame {frame} yielded twice"
        out[frame] = arrays
    assert sorted(out) == sorted(ctx.todo)
    return out
