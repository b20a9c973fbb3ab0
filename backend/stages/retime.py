"""The `retime` stage: drop every k-th frame of a take and rebuild it by occlusion-aware flow interpolation.

Run on a per-frame stylized take, this is the seed's Flowframes trick: the dropped frames come back as
in-betweens of their neighbours, which softens the flicker of frames stylized on their own. Alpha and
depth, when the source has them, are interpolated with the same flow. Holds three frames at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from backend.ipc.take import Layer
from backend.params import ParamError, param
from backend.pipelines.retime import Interpolator, RetimeParams, dropped
from backend.stages.base import StageContext, StageError, flow_layers, register


@dataclass
class RetimeStageParams:
    drop_every: int = param(2, min=2, max=100, help="drop every k-th frame (2 halves the rate) and rebuild it")
    flow_preset: str = param("medium", choices=["ultrafast", "fast", "medium"], help="DIS optical flow preset")
    layers: list[str] = param(["color"], choices=["color", "alpha", "depth"], help="layers to write")
    depth_near: float = param(0.0, help="depth value stored as 0 in the 16-bit depth layer")
    depth_far: float = param(1.0, help="depth value stored as 65535 in the 16-bit depth layer")

    def validate(self) -> None:
        if "color" not in self.layers:
            raise ParamError("layers", "must include color")


@register
class RetimeStage:
    name = "retime"
    Params = RetimeStageParams
    summary = "drop every k-th frame and rebuild it by occlusion-aware flow interpolation (smooths flicker)"
    version = 1

    def layers(self, params: RetimeStageParams, size: tuple[int, int]) -> dict[str, Layer]:
        return flow_layers(params.layers, params.depth_near, params.depth_far)

    def run(self, params: RetimeStageParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        frames = list(ctx.frames)
        position = {frame: i for i, frame in enumerate(frames)}
        rebuilt = {frames[i] for i in dropped(len(frames), params.drop_every)}
        interpolator = Interpolator(RetimeParams(params.drop_every, params.flow_preset))
        todo = sorted(ctx.todo)
        for count, frame in enumerate(todo):
            ctx.check_cancelled()
            if frame in rebuilt:
                i = position[frame]
                before, after = self._read(ctx, params, frames[i - 1]), self._read(ctx, params, frames[i + 1])
                layers = interpolator.between(before, after, 0.5)
            else:
                layers = self._read(ctx, params, frame)
            ctx.progress(frame, count + 1, len(todo), "rebuilt" if frame in rebuilt else "kept")
            yield frame, layers

    def _read(self, ctx: StageContext, params: RetimeStageParams, frame: int) -> dict[str, np.ndarray]:
        data = ctx.read_input(frame)
        missing = [name for name in params.layers if name not in data]
        if missing:
            raise StageError(f"frame {frame} of the source has no {', '.join(missing)} layer; drop it from `layers`",
                             code="bad_input", frame=frame)
        return {name: data[name] for name in params.layers}
