"""The `matte` stage: a matte per frame (chroma key or rembg), smoothed over time, grown/shrunk and feathered.

Colour out is straight (not premultiplied): despilled and unmixed at the fringe for a chroma key,
untouched for rembg. Alpha out is float in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from backend.identity import REMBG_PREFIX
from backend.ipc.take import Layer
from backend.loaders.matte import load_matte_session
from backend.params import param
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key
from backend.pipelines.matte_refine import RefineParams, refine_alpha
from backend.pipelines.matte_temporal import smooth_alpha
from backend.pipelines.rembg_matte import RembgParams, rembg_alpha
from backend.stages.base import StageContext, StageError, register
from backend.stages.frame_window import FrameWindow
from backend.stages.model_source import model_source, warm


@dataclass
class MatteParams:
    method: str = param("chroma", choices=("chroma", "rembg"), help="how the matte is made")
    key: ChromaKeyParams = field(default_factory=ChromaKeyParams)
    rembg: RembgParams = field(default_factory=RembgParams)
    refine: RefineParams = field(default_factory=RefineParams)


@register
class MatteStage:
    name = "matte"
    Params = MatteParams
    summary = "alpha matte per frame (chroma key with despill, or rembg), smoothed over time, grown/shrunk and feathered"
    version = 1

    def model_roles(self, params: MatteParams, models) -> list[str]:
        if params.method != "rembg":
            return []
        return ["matte"] if params.rembg.model == "config" else [REMBG_PREFIX + params.rembg.model]

    def layers(self, params: MatteParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"color": Layer("png8"), "alpha": Layer("png16")}

    def run(self, params: MatteParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        matte_one = self._matter(params, ctx)

        def raw(frame: int) -> tuple[np.ndarray, np.ndarray]:
            inputs = ctx.read_input(frame)
            if "color" not in inputs:
                raise StageError("the matte stage needs a colour layer in its source", code="bad_input", frame=frame)
            return matte_one(inputs["color"])

        window = FrameWindow(ctx.frames, params.refine.temporal_radius, raw)
        for frame in ctx.todo:
            ctx.check_cancelled()
            (color, alpha), neighbours = window.around(frame)
            if neighbours:
                alpha = smooth_alpha((color, alpha), neighbours, params.refine.temporal_tolerance)
            alpha = refine_alpha(alpha, params.refine)
            ctx.progress(frame, 1, 1, "matted")
            yield frame, {"color": color, "alpha": alpha}

    def _matter(self, params: MatteParams, ctx: StageContext):
        """A function colour -> (straight colour, alpha) for the chosen method (models loaded once, here)."""
        if params.method == "chroma":
            return lambda color: chroma_key(color, params.key)
        if params.rembg.model == "config":
            source, local_only = model_source(ctx, "matte")
        else:
            source, local_only = params.rembg.model, True
            if "/" in source or "\\" in source or source.endswith(".onnx"):
                raise StageError("rembg.model takes a rembg model name; custom .onnx files go in the model config's "
                                 "'matte' entry (set rembg.model=config)", code="bad_params")
        kind = params.rembg.custom_kind
        session = warm(ctx, "matte", (source, kind),
                       lambda: load_matte_session(source, local_files_only=local_only, custom_kind=kind))
        return lambda color: (np.ascontiguousarray(color[..., :3]), rembg_alpha(session, color, params.rembg.post_process))
