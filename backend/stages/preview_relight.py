"""The `preview_normal` and `preview_albedo` stages: PREVIEW layers for a relightable card, with no weights.

Their source is a take with colour and alpha (the matte stage's), plus depth for preview_normal when there
is one (the depth or preview_depth stage's take, assembled with the matte). The stage name in take.json
says a take is a preview; the real models are the `normal` and `albedo` stages.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from backend.imageio import to_unit
from backend.ipc.take import Layer
from backend.pipelines.preview_albedo import PreviewAlbedoParams, preview_albedo
from backend.pipelines.preview_normal import PreviewNormalParams, encode_normals, preview_normals
from backend.stages.base import StageContext, StageError, register


def _alpha(stage: str, inputs: dict, frame: int) -> np.ndarray:
    if "alpha" not in inputs:
        raise StageError(f"{stage} needs an alpha layer in its source: run the matte stage first and give its take "
                         "as the source", code="bad_input", frame=frame)
    return to_unit(np.asarray(inputs["alpha"]))


@register
class PreviewNormalStage:
    name = "preview_normal"
    Params = PreviewNormalParams
    summary = "PREVIEW normals from the depth layer, or the matte's silhouette (no weights; not a normal model)"
    version = 1
    per_frame = True   # each frame from its own input: a job splits into frame ranges (cluster units)

    def layers(self, params: PreviewNormalParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"normal": Layer("png8")}

    def run(self, params: PreviewNormalParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for frame in ctx.todo:
            ctx.check_cancelled()
            inputs = ctx.read_input(frame)
            alpha = _alpha(self.name, inputs, frame)
            depth = inputs.get("depth")
            depth = None if depth is None else np.asarray(depth, np.float32)
            if depth is not None and depth.ndim == 3:
                depth = depth[..., 0]
            try:
                normal = preview_normals(alpha, depth, params)
            except ValueError as e:
                raise StageError(f"preview_normal: {e}", code="bad_input", frame=frame) from e
            ctx.progress(frame, 1, 1, "normals from depth")
            yield frame, {"normal": encode_normals(normal)}


@register
class PreviewAlbedoStage:
    name = "preview_albedo"
    Params = PreviewAlbedoParams
    summary = "PREVIEW albedo: the colour divided by a smooth shading estimate (no weights; not an intrinsics model)"
    version = 2
    per_frame = True

    def layers(self, params: PreviewAlbedoParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"albedo": Layer("png8")}

    def run(self, params: PreviewAlbedoParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for frame in ctx.todo:
            ctx.check_cancelled()
            inputs = ctx.read_input(frame)
            if "color" not in inputs:
                raise StageError("preview_albedo needs a colour layer in its source", code="bad_input", frame=frame)
            alpha = _alpha(self.name, inputs, frame)
            try:
                albedo = preview_albedo(inputs["color"], alpha, params)
            except ValueError as e:
                raise StageError(f"preview_albedo: {e}", code="bad_input", frame=frame) from e
            ctx.progress(frame, 1, 1, "shading divided out")
            yield frame, {"albedo": albedo}
