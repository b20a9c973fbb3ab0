"""Per-frame normals and albedo with diffusers' Marigold pipelines, steady over a shot.

Marigold turns a single image into a dense prediction by denoising a latent conditioned on the image.
Run frame by frame from fresh noise, its predictions flicker. Marigold's own video recipe (diffusers'
Marigold usage guide) starts every frame from the same noise, blended with the latent the previous frame
ended on: the previous prediction pulls each frame toward itself, and the shared noise keeps the
remaining randomness identical from frame to frame. `steadiness` is the previous latent's weight.

Normals come out as unit vectors in Marigold's camera frame (x right, y up, z toward the viewer): the
project's convention. Albedo comes out as sRGB: models that predict it in linear light (the lighting
model) say so in their `target_properties`, and it is converted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.params import param
from backend.pipelines.srgb import linear_to_srgb


@dataclass
class MarigoldParams:
    steps: int | None = param(None, min=1, max=100, help="denoising steps (default: the model's own; 1-4 for v1-1 models)")
    resolution: int | None = param(None, min=64, max=4096,
                                   help="processing resolution, longest side in pixels (default: the model's own, 768)")
    ensemble: int = param(1, min=1, max=16, help="predictions averaged per frame (steadier and slower)")
    steadiness: float = param(0.1, min=0.0, max=0.95,
                              help="weight of the previous frame's latent in each frame's starting noise (0: frames independent)")
    seed: int = param(0, min=0, help="seed of the starting noise every frame shares")


def latent_shape(pipe: Any, height: int, width: int, params: MarigoldParams) -> tuple[int, int, int, int]:
    """The shape of the latent the pipeline denoises for one HxW frame (as its check_inputs computes it)."""
    resolution = params.resolution or pipe.default_processing_resolution or max(height, width)
    scaled_h, scaled_w = height * resolution // max(height, width), width * resolution // max(height, width)
    factor = pipe.vae_scale_factor
    channels = pipe.vae.config.latent_channels * len(target_names(pipe) or [None])
    return params.ensemble, channels, (scaled_h + factor - 1) // factor, (scaled_w + factor - 1) // factor


def target_names(pipe: Any) -> list[str] | None:
    """An intrinsics pipeline's predicted modalities in order ("albedo", "shading", ...); None for normals."""
    properties = getattr(pipe, "target_properties", None)
    return list(properties["target_names"]) if properties and "target_names" in properties else None


def starting_noise(pipe: Any, shape: tuple, seed: int):
    """The noise every frame of the shot starts from (made on the CPU: the same on every device)."""
    import torch

    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    param_ = next(pipe.unet.parameters())
    return noise.to(device=param_.device, dtype=param_.dtype)


def predict(pipe: Any, rgb: np.ndarray, params: MarigoldParams, noise, previous=None):
    """One HxWx3 uint8 frame -> (prediction HxWx3 float32 per target, the latent it ended on).

    Normals: {"normal": unit vectors}. Intrinsics: {target name: values in [0, 1]}, albedo as sRGB.
    """
    import torch

    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"Marigold expects an HxWx3 colour frame, got shape {rgb.shape}")
    latents = noise if previous is None else (1.0 - params.steadiness) * noise + params.steadiness * previous.to(noise)
    # a tensor N×3×H×W: the pipeline's shape checks read (H, W) from the last two axes, even for arrays
    image = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        out = pipe(image, num_inference_steps=params.steps, ensemble_size=params.ensemble,
                   processing_resolution=params.resolution, match_input_resolution=True, latents=latents,
                   output_type="np", output_latent=True)
    prediction = np.asarray(out.prediction, np.float32)
    names = target_names(pipe)
    if names is None:
        normal = prediction[0]
        normal = normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
        return {"normal": normal}, out.latent.detach().float().cpu()
    result = {}
    for name, values in zip(names, prediction):
        space = (pipe.target_properties.get(name) or {}).get("prediction_space", "srgb")
        result[name] = linear_to_srgb(values) if space == "linear" else np.clip(values, 0.0, 1.0)
    return result, out.latent.detach().float().cpu()
