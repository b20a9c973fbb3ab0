"""Diffusion upscaling, 4x (diffusers' StableDiffusionUpscalePipeline), in tiles that agree where they overlap.

Diffusion invents detail from noise, so two tiles given independent noise invent different detail and
a seam appears where they meet. Here one noise field is drawn for the whole frame from the seed and
each tile is given its crop of it: the overlaps start from the same noise, and the blend only has to
even out what the differing context changes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from backend.pipelines.tiling import TileFn
from backend.pipelines.upscale import UpscaleParams


def size_multiple(pipe: Any) -> int:
    """Latent sizes the UNet accepts: it halves the latent once per down block but the last."""
    return 2 ** (len(pipe.unet.config.block_out_channels) - 1)


def sd_upscale_runner(pipe: Any) -> Callable[[UpscaleParams, int, int], TileFn]:
    import torch

    multiple = size_multiple(pipe)

    def for_frame(params: UpscaleParams, height: int, width: int) -> TileFn:
        generator = torch.Generator("cpu").manual_seed(params.seed)
        channels = pipe.vae.config.latent_channels
        noise = torch.randn((1, channels, height + multiple, width + multiple), generator=generator)

        def run(tile: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
            h, w = tile.shape[:2]
            ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
            padded = np.pad(tile[..., :3], ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
            top, left = origin
            latents = noise[:, :, top: top + ph, left: left + pw]
            out = pipe(
                prompt=params.prompt, negative_prompt=params.negative_prompt or None,
                image=padded.astype(np.float32)[None] / 255.0, num_inference_steps=params.steps,
                guidance_scale=params.guidance, noise_level=params.noise_level,
                generator=torch.Generator("cpu").manual_seed(params.seed), latents=latents.to(pipe.unet.dtype),
                output_type="np",
            ).images[0]
            scale = out.shape[0] // ph
            return np.clip(out[: h * scale, : w * scale], 0.0, 1.0).astype(np.float32)

        return run

    return for_frame
