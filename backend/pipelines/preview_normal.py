"""PREVIEW normals: surface normals derived from a depth map (or the matte's silhouette), for cards when no
normal model is loaded.

Depth is turned into a height field and differentiated: a surface that recedes to the right faces right,
one that recedes up the image faces up (the outline of a rounded body, far at its edge, faces outward). `relief` says how many pixels one unit of
depth spans, as a fraction of the frame height, so that the preview depth's circular bulge (whose radius
is the same fraction, backend/pipelines/preview_depth.py) comes out as a round body and not a slab.
Outside the silhouette the normal faces the camera. It is a stand-in, not an estimate of the scene.

Output: H×W×3 float32 unit vectors in camera space (x right, y up, z toward the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.params import param
from backend.pipelines.preview_depth import PreviewDepthParams, silhouette_depth


@dataclass
class PreviewNormalParams:
    relief: float = param(0.06, min=0.001, max=1.0,
                          help="pixels spanned by one unit of depth, as a fraction of the frame height")
    threshold: float = param(0.5, min=0.01, max=0.99, help="alpha above this is inside the silhouette")
    blur: float = param(1.5, min=0.0, max=20.0, help="Gaussian smoothing of the depth before differentiating, in pixels")


def normals_from_depth(depth: np.ndarray, params: PreviewNormalParams) -> np.ndarray:
    """H×W depth (larger = farther) -> H×W×3 unit camera-space normals."""
    if depth.ndim != 2:
        raise ValueError(f"preview normals take an H×W depth map, got shape {depth.shape}")
    height = depth.shape[0] * params.relief
    field = depth.astype(np.float32) * height  # depth in pixels
    if params.blur > 0:
        field = cv2.GaussianBlur(field, (0, 0), params.blur)
    d_right = cv2.Sobel(field, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    d_down = cv2.Sobel(field, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    normal = np.stack([d_right, -d_down, np.ones_like(field)], axis=-1)  # rows run down, y runs up
    return (normal / np.linalg.norm(normal, axis=-1, keepdims=True)).astype(np.float32)


def preview_normals(alpha: np.ndarray, depth: np.ndarray | None, params: PreviewNormalParams) -> np.ndarray:
    """Normals from the depth layer when there is one, else from the silhouette's preview relief; facing the
    camera outside the silhouette (nothing there to shade)."""
    if alpha.ndim != 2:
        raise ValueError(f"preview normals take an H×W alpha matte, got shape {alpha.shape}")
    if depth is None:
        depth = silhouette_depth(alpha, PreviewDepthParams(threshold=params.threshold, radius=params.relief))
    elif depth.shape != alpha.shape:
        raise ValueError(f"depth {depth.shape} and alpha {alpha.shape} differ in size")
    normal = normals_from_depth(depth, params)
    normal[alpha <= params.threshold] = (0.0, 0.0, 1.0)
    return normal


def encode_normals(normal: np.ndarray) -> np.ndarray:
    """Unit normals -> the take's normal layer values, (n + 1) / 2 in [0, 1]."""
    return np.clip((normal + 1.0) * 0.5, 0.0, 1.0).astype(np.float32)


def decode_normals(stored: np.ndarray) -> np.ndarray:
    """The take's normal layer (uint8 or [0, 1] floats) -> unit normals."""
    unit = stored.astype(np.float32) / (255.0 if stored.dtype == np.uint8 else 1.0)
    normal = unit[..., :3] * 2.0 - 1.0
    return normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
