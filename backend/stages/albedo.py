"""The `albedo` stage: the colour without the footage's lighting, per frame, from a Marigold intrinsics model."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from backend.ipc.take import Layer
from backend.loaders.marigold import load_marigold
from backend.pipelines.marigold import MarigoldParams
from backend.stages.base import StageContext, register
from backend.stages.marigold_chain import chained_predictions
from backend.stages.model_source import model_source, warm


@register
class AlbedoStage:
    name = "albedo"
    Params = MarigoldParams
    summary = "albedo per frame (Marigold intrinsics: the colour with the lighting taken out), steady over the shot"
    version = 1

    def model_roles(self, params: MarigoldParams, models) -> list[str]:
        return ["albedo"]

    def layers(self, params: MarigoldParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"albedo": Layer("png8")}

    def run(self, params: MarigoldParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        source, local_only = model_source(ctx, "albedo")
        pipe = warm(ctx, "albedo", (source, ctx.device),
                    lambda: load_marigold("intrinsics", source, local_files_only=local_only, device=ctx.device, role="albedo"))
        for frame, prediction in chained_predictions(pipe, params, ctx, self.name):
            albedo = np.round(np.clip(prediction["albedo"], 0.0, 1.0) * 255.0).astype(np.uint8)
            yield frame, {"albedo": albedo}
