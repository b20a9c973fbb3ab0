"""The `upscale` stage: colour 2x or 4x by a super-resolution model in tiles (or Lanczos); alpha follows.

With `layers`, the albedo goes through the same upscaler as the colour (it is a colour image too), and the
normals are resampled and renormalised (a super-resolution model trained on photographs would invent
texture in them). Alpha is written in 16 bits: resized, it carries more than 8 bits of edge.
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from backend.imageio import to_unit
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
    version = 2
    per_frame = True   # each frame from its own input: a job splits into frame ranges (cluster units)

    def model_roles(self, params: UpscaleParams, models) -> list[str]:
        return ["upscaler"] if params.method == "model" else []

    def layers(self, params: UpscaleParams, size: tuple[int, int]) -> dict[str, Layer]:
        return {"color": Layer("png8"), "alpha": Layer("png16"), **{name: Layer("png8") for name in params.layers}}

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
            out = {"color": color, "alpha": alpha}
            for name in params.layers:
                out[name] = self._extra(name, inputs, frame, params, upscaler, (width, height), ctx)
            yield frame, out

    def _extra(self, name, inputs, frame, params, upscaler, size, ctx) -> np.ndarray:
        if name not in inputs:
            raise StageError(f"layers={name} but the source has no {name!r} layer on frame {frame}; give a take that "
                             f"has one (run the {name} stage first) or leave {name} out of layers",
                             code="bad_input", frame=frame)
        image = np.asarray(inputs[name])
        if image.ndim != 3 or image.shape[2] < 3:
            raise StageError(f"the {name} layer of frame {frame} is not an RGB image (shape {image.shape})",
                             code="bad_input", frame=frame)
        if name == "albedo":
            albedo = image[..., :3] if image.dtype == np.uint8 else np.round(to_unit(image[..., :3]) * 255).astype(np.uint8)
            out = upscale_frame(albedo, params, upscaler, on_tile=self._tile_done(ctx, frame))
            return out if out.shape[:2] == size[::-1] else cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4)
        normal = to_unit(image[..., :3]) * 2.0 - 1.0
        normal = cv2.resize(normal, size, interpolation=cv2.INTER_CUBIC)
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
        return ((normal + 1.0) * 0.5).astype(np.float32)

    @staticmethod
    def _tile_done(ctx: StageContext, frame: int):
        """Progress per tile, and a chance to cancel between tiles (a 4K diffusion frame is many tiles)."""
        def done(count: int, total: int) -> None:
            ctx.progress(frame, count, total, "upscaling")
            ctx.check_cancelled()
        return done
