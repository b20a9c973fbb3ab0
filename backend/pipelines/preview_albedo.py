"""PREVIEW albedo: the colour with a smooth estimate of the footage's shading divided out.

The shading is guessed as the brightness of the figure blurred over a wide radius (weighted by the matte,
so the background does not leak in); dividing it out, in linear light, flattens broad light falloff and
the shade side of a body while keeping texture and fine detail. Shading is normalised by its median over
the figure, so the albedo keeps the colour's overall level. It is a stand-in for an intrinsics model: it
cannot tell a dark shirt from a shadowed one at the scale of the blur.

Output: H×W×3 uint8 sRGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.params import param
from backend.pipelines.srgb import linear_to_srgb, srgb_to_linear


@dataclass
class PreviewAlbedoParams:
    radius: float = param(0.08, min=0.005, max=1.0, help="shading blur radius, as a fraction of the frame height")
    strength: float = param(1.0, min=0.0, max=1.0, help="how much of the estimated shading to take out")
    threshold: float = param(0.5, min=0.01, max=0.99, help="alpha above this is inside the figure")
    floor: float = param(0.3, min=0.001, max=1.0,
                         help="shading never counts as darker than this (at most 1/floor brighter: no blow-up of dark cloth or holes)")


def shading_estimate(linear: np.ndarray, alpha: np.ndarray, params: PreviewAlbedoParams) -> np.ndarray:
    """H×W shading, 1.0 = the figure's median brightness."""
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    weight = (alpha > params.threshold).astype(np.float32)
    sigma = max(0.5, params.radius * linear.shape[0])
    # normalised convolution: the blur of the figure's brightness over the blur of where the figure is
    spread = cv2.GaussianBlur(luminance * weight, (0, 0), sigma)
    cover = cv2.GaussianBlur(weight, (0, 0), sigma)
    shading = np.where(cover > 1e-3, spread / np.maximum(cover, 1e-3), 0.0)
    inside = shading[weight > 0]
    level = float(np.median(inside)) if inside.size else 1.0
    if level <= 0:
        return np.ones_like(luminance)
    shading = np.where(weight > 0, shading / level, 1.0)
    return np.maximum(shading, params.floor).astype(np.float32)


def preview_albedo(rgb: np.ndarray, alpha: np.ndarray, params: PreviewAlbedoParams) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
        raise ValueError(f"preview albedo takes an H×W×3 uint8 colour frame, got {rgb.dtype} {rgb.shape}")
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha {alpha.shape} and colour {rgb.shape[:2]} differ in size")
    linear = srgb_to_linear(rgb[..., :3].astype(np.float32) / 255.0)
    shading = shading_estimate(linear, alpha, params) ** params.strength
    albedo = linear / shading[..., None]
    return np.round(np.clip(linear_to_srgb(np.clip(albedo, 0.0, 1.0)), 0.0, 1.0) * 255.0).astype(np.uint8)
