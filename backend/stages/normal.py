"""The `normal` stage: camera-space normals per frame from a Marigold normals model, steady over the shot."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from backend.ipc.take import Layer
from backend.loaders.marigold import load_marigold
from backend.pipelines.marigold import MarigoldParams
from backend.pipelines.preview_normal import encode_normals
from backend.stages.base import StageContext, register
from backend.stages.marigold_chain import chained_predictions
from backend.stages.model_source import model_source, warm


@register
class NormalStage:
    name = "normal"
    Params = MarigoldParams
    summary = "camera-space normals per frame (Marigold normals), each frame started from the previous one's latent"
    version = 1

    def model_roles(self, params: MarigoldParams, models) -> list[str]:
        return ["normal"]

    def layers(self, params: MarigoldParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"normal": Layer("png8")}

    def run(self, params: MarigoldParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        source, local_only = model_source(ctx, "normal")
        pipe = warm(ctx, "normal", (source, ctx.device),
                    lambda: load_marigold("normals", source, local_files_only=local_only, device=ctx.device, role="normal"))
        for frame, prediction in chained_predictions(pipe, params, ctx, self.name):
            yield frame, {"normal": encode_normals(prediction["normal"])}
