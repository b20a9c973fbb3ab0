"""PREVIEW depth: a relief guessed from the matte's silhouette, for cards when no depth model is loaded.

Inside the silhouette the surface bulges toward the camera like a rounded cross-section: depth falls
from the far end at the outline to the near end `radius` pixels inside it (a circular profile). The
radius is a fixed fraction of the frame height, not of each frame's silhouette, so the relief does not
pump from frame to frame. It is a stand-in, not an estimate of the scene's real depth.

Output: H×W float32 in [0, 1], 0 = near (toward the camera), 1 = far; outside the silhouette 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.params import param


@dataclass
class PreviewDepthParams:
    threshold: float = param(0.5, min=0.01, max=0.99, help="alpha above this is inside the silhouette")
    radius: float = param(0.06, min=0.005, max=0.5, help="bulge depth reached this far inside (fraction of height)")
    relief: float = param(1.0, min=0.0, max=1.0, help="how much of the near..far range the bulge spans")
    blur: float = param(1.5, min=0.0, max=20.0, help="Gaussian smoothing of the result, in pixels")


def silhouette_depth(alpha: np.ndarray, params: PreviewDepthParams) -> np.ndarray:
    if alpha.ndim != 2:
        raise ValueError(f"preview depth takes an H×W alpha matte, got shape {alpha.shape}")
    mask = (alpha > params.threshold).astype(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    reach = np.clip(inside / max(1.0, params.radius * alpha.shape[0]), 0.0, 1.0)
    bulge = np.sqrt(1.0 - (1.0 - reach) ** 2)  # circular profile: steep at the outline, flat in the middle
    depth = 1.0 - params.relief * bulge
    if params.blur > 0:
        depth = cv2.GaussianBlur(depth.astype(np.float32), (0, 0), params.blur)
    return np.clip(depth, 0.0, 1.0).astype(np.float32)
