"""The `upscale` stage: colour 2x or 4x by a super-resolution model in tiles (or Lanczos); alpha follows."""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from backend.ipc.take import Layer
from backend.loaders.upscale import load_upscaler
from backend.pipelines.upscale import UpscaleParams, upscale_frame
from backend.stages.base import StageContext, StageError, register
from backend.stages.model_source import model_source, warm


@register
class UpscaleStage:
    name = "upscale"
    Params = UpscaleParams
    summary = "colour upscaled 2x or 4x (Swin2SR or SD x4 upscaler in blended tiles, or Lanczos); alpha resized to match"
    version = 1

    def model_roles(self, params: UpscaleParams, models) -> list[str]:
        return ["upscaler"] if params.method == "model" else []

    def layers(self, params: UpscaleParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"color": Layer("png8"), "alpha": Layer("png16")}

    def run(self, params: UpscaleParams, ctx: StageContext) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        upscaler = None
        if params.method == "model":
            source, local_only = model_source(ctx, "upscaler")
            upscaler = warm(ctx, "upscaler", (source, ctx.device),
                            lambda: load_upscaler(source, local_files_only=local_only, device=ctx.device))
            if params.scale not in (None, upscaler.scale):
                raise StageError(f"the configured upscaler {upscaler.name} is {upscaler.scale}x but scale={params.scale}; "
                                 f"set scale={upscaler.scale} or configure a {params.scale}x model", code="bad_params")
        for frame in ctx.todo:
            ctx.check_cancelled()
            inputs = ctx.read_input(frame)
            if "color" not in inputs:
                raise StageError("the upscale stage needs a colour layer in its source", code="bad_input", frame=frame)
            color = upscale_frame(inputs["color"], params, upscaler, on_tile=self._tile_done(ctx, frame))
            height, width = color.shape[:2]
            alpha = inputs.get("alpha")
            if alpha is None:
                alpha = np.ones((height, width), np.float32)
            else:  # a matte is smooth: a plain resize keeps it aligned with the upscaled colour
                unit = alpha.astype(np.float32) / (65535.0 if alpha.dtype == np.uint16 else 255.0 if alpha.dtype == np.uint8 else 1.0)
                alpha = np.clip(cv2.resize(unit, (width, height), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
            yield frame, {"color": color, "alpha": alpha}

    @staticmethod
    def _tile_done(ctx: StageContext, frame: int):
        """Progress per tile, and a chance to cancel between tiles (a 4K diffusion frame is many tiles)."""
        def done(count: int, total: int) -> None:
            ctx.progress(frame, count, total, "upscaling")
            ctx.check_cancelled()
        return done
