"""The `matte` stage: a matte per frame (chroma key) plus refinement. Needs no model weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from backend.ipc.take import Layer
from backend.params import param
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key
from backend.pipelines.matte_refine import RefineParams, refine_alpha
from backend.stages.base import StageContext, StageError, register


@dataclass
class MatteParams:
    method: str = param("chroma", choices=("chroma",), help="how the matte is made")
    key: ChromaKeyParams = field(default_factory=ChromaKeyParams)
    refine: RefineParams = field(default_factory=RefineParams)


@register
class MatteStage:
    name = "matte"
    Params = MatteParams
    summary = "alpha matte per frame (chroma key with despill), grown/shrunk and feathered"

    def layers(self, params: MatteParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"color": Layer("png8"), "alpha": Layer("png16")}

    def run(self, params: MatteParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for frame in ctx.todo:
            ctx.check_cancelled()
            inputs = ctx.read_input(frame)
            if "color" not in inputs:
                raise StageError("the matte stage needs a colour layer in its source", code="bad_input", frame=frame)
            color, alpha = chroma_key(inputs["color"], params.key)
            alpha = refine_alpha(alpha, params.refine)
            ctx.progress(frame, 1, 1, "keyed")
            yield frame, {"color": color, "alpha": alpha}
