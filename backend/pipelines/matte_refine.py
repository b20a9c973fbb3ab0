"""Matte refinement: grow or shrink the edge, then feather it (the seed's "expand then blur" halo).

Temporal smoothing (its parameters are here, with the rest of the refinement) needs neighbouring
frames, so the matte stage applies it before this per-frame step: see backend/pipelines/matte_temporal.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.params import param


@dataclass
class RefineParams:
    grow: int = param(0, min=-256, max=256, help="pixels to grow (>0) or shrink (<0) the matte's edge")
    feather: float = param(0.0, min=0.0, max=256.0, help="width in pixels of the soft edge (Gaussian sigma)")
    temporal_radius: int = param(0, min=0, max=8, help="frames on each side averaged into each matte (0: off)")
    temporal_tolerance: float = param(0.06, min=0.001, max=1.0,
                                      help="colour change (0..1) above which a pixel counts as moved and is not averaged")


def refine_alpha(alpha: np.ndarray, params: RefineParams) -> np.ndarray:
    """Grow/shrink then feather a float alpha in [0, 1]; returns float32 in [0, 1]."""
    out = alpha.astype(np.float32, copy=True)
    if params.grow:
        radius = abs(params.grow)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.dilate(out, kernel) if params.grow > 0 else cv2.erode(out, kernel)
    if params.feather > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=params.feather, borderType=cv2.BORDER_REPLICATE)
    return np.clip(out, 0.0, 1.0)
