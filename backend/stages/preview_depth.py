"""The `preview_depth` stage: PREVIEW depth from the matte's silhouette. Needs no model weights.

Its source is a take with an alpha layer (the matte stage's); the real depth models are the `depth` stage.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from backend.ipc.take import Layer
from backend.pipelines.preview_depth import PreviewDepthParams, silhouette_depth
from backend.stages.base import StageContext, StageError, register


@register
class PreviewDepthStage:
    name = "preview_depth"
    Params = PreviewDepthParams
    summary = "PREVIEW depth: a rounded relief from the matte's silhouette (no weights; not a depth model)"
    version = 1
    per_frame = True   # each depth frame comes from its own matte only: a job splits into frame ranges

    def layers(self, params: PreviewDepthParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"depth": Layer("png16", near=0.0, far=1.0, units="relative")}

    def run(self, params: PreviewDepthParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for frame in ctx.todo:
            ctx.check_cancelled()
            inputs = ctx.read_input(frame)
            if "alpha" not in inputs:
                raise StageError("preview_depth needs an alpha layer in its source: run the matte stage first and "
                                 "give its take as the source", code="bad_input", frame=frame)
            ctx.progress(frame, 1, 1, "silhouette depth")
            yield frame, {"depth": silhouette_depth(np.asarray(inputs["alpha"], np.float32), params)}
