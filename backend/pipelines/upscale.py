"""Upscaling a frame 2x or 4x: a super-resolution model run in blended tiles, or Lanczos when asked.

Tiling is what lets 960x540 -> 3840x2160 fit in memory: a Swin2SR pass over a whole 4K output holds
attention for every window at once; a 256-pixel tile holds a few. Overlap and the blend (see
backend/pipelines/tiling.py) keep the seams invisible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from backend.params import ParamError, param
from backend.pipelines.tiling import TileFn, tiled


@dataclass
class UpscaleParams:
    method: str = param("model", choices=("model", "resample"),
                        help="model: the configured super-resolution model; resample: plain Lanczos")
    scale: int | None = param(None, choices=(2, 4),
                              help="output size over input size (default: the model's own factor; 4 for resample)")
    tile: int = param(256, min=16, max=4096, help="input pixels per tile side")
    overlap: int = param(32, min=0, max=1024, help="input pixels shared by neighbouring tiles")
    # diffusion upscalers only (StableDiffusionUpscalePipeline); Swin2SR ignores them
    prompt: str = param("", help="diffusion upscaler: what the image shows (guides invented detail)")
    negative_prompt: str = param("", help="diffusion upscaler: what to avoid")
    steps: int = param(20, min=1, max=200, help="diffusion upscaler: denoising steps")
    guidance: float = param(7.5, min=0.0, max=30.0, help="diffusion upscaler: classifier-free guidance scale")
    noise_level: int = param(20, min=0, max=350, help="diffusion upscaler: noise added to the input (more: more invention)")
    seed: int = param(0, min=0, help="diffusion upscaler: seed of the whole-frame noise")
    layers: list[str] = param([], choices=("albedo", "normal"),
                              help="layers upscaled with the colour: albedo (the same way), normal (resampled, renormalised)")

    def validate(self) -> None:
        if self.overlap * 2 > self.tile:
            raise ParamError("overlap", f"must be at most half the tile ({self.tile // 2}), got {self.overlap}")


@dataclass
class Upscaler:
    """A loaded super-resolution model.

    `for_frame(params, height, width)` gives the tile function for one frame: (tile uint8 HxWx3, origin)
    -> float32 (H*scale)x(W*scale)x3 in [0, 1].
    """

    for_frame: Callable[[UpscaleParams, int, int], TileFn]
    scale: int
    align: int      # tile origins on this grid keep the model's windows where the whole image puts them
    name: str


def swin2sr_runner(model: Any, processor: Any) -> Callable[[UpscaleParams, int, int], TileFn]:
    """Tile functions for transformers' Swin2SRForImageSuperResolution and its image processor."""
    import torch

    scale = int(model.config.upscale)

    def run(tile: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
        height, width = tile.shape[:2]
        inputs = processor(images=np.ascontiguousarray(tile[..., :3]), return_tensors="pt")
        param = next(model.parameters())
        with torch.inference_mode():
            out = model(pixel_values=inputs["pixel_values"].to(device=param.device, dtype=param.dtype))
        picture = out.reconstruction[0, :, : height * scale, : width * scale]  # drop the processor's padding
        return picture.float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    return lambda params, height, width: run


def resample(rgb: np.ndarray, scale: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (width * scale, height * scale), interpolation=cv2.INTER_LANCZOS4)


def upscale_frame(rgb: np.ndarray, params: UpscaleParams, upscaler: Upscaler | None = None,
                  on_tile: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """One HxWx3 uint8 frame -> (H*scale)x(W*scale)x3 uint8."""
    if params.method == "resample":
        return resample(rgb, params.scale or 4)
    if upscaler is None:
        raise ValueError("method=model needs a loaded upscaler")
    if params.scale not in (None, upscaler.scale):
        raise ValueError(f"the upscaler {upscaler.name} is {upscaler.scale}x, but scale={params.scale} was asked; "
                         f"configure a {params.scale}x model or set scale={upscaler.scale}")
    height, width = rgb.shape[:2]
    out = tiled(rgb[..., :3], upscaler.for_frame(params, height, width), upscaler.scale, params.tile, params.overlap, upscaler.align, on_tile)
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
