"""PREVIEW stylization: a pixel-wise colour grade (and optional posterize) that needs no model weights.

It stands in for diffusion when no model is loaded, so the whole temporal chain (keyframes, grids, colour
matching, propagation) can be previewed and measured. Being pixel-wise, its ideal result for any frame is
known exactly: f(frame), which is what the fidelity metric compares against. It is not a style.
"""

from __future__ import annotations

import numpy as np

# A warm, slightly desaturated "look": channel mix, then a tone curve.
_MIX = np.array([[0.85, 0.20, 0.00], [0.05, 0.85, 0.05], [0.00, 0.15, 0.70]], dtype=np.float32)


def _lut(gamma: float = 0.85) -> np.ndarray:
    x = np.arange(256, dtype=np.float32) / 255.0
    return x**gamma


def preview_grade(rgb: np.ndarray, levels: int = 0) -> np.ndarray:
    """f(frame): uint8 RGB in, uint8 RGB out, each pixel on its own. `levels` > 1 posterizes."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"preview stylization takes HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    toned = _lut()[rgb]  # a lookup per channel is cheap and exactly pixel-wise
    graded = np.clip(toned @ _MIX.T, 0.0, 1.0)
    if levels > 1:
        graded = np.round(graded * (levels - 1)) / (levels - 1)
    return np.round(graded * 255.0).astype(np.uint8)


def preview_stylizer(levels: int = 0):
    """The preview as a grid stylizer: (grid image, control maps) -> stylized grid."""

    def stylize(grid: np.ndarray, control_maps: dict[str, np.ndarray]) -> np.ndarray:
        return preview_grade(grid, levels)

    stylize.label = "preview (pixel-wise colour grade, not diffusion)"
    return stylize
