"""The control video VACE takes, composed from the take's own layers, and its mask.

VACE takes one control video, so the layers are drawn into one frame: depth as grey (near = bright, as in
VACE's depth task), line art as white lines over it, the pose skeleton's colours over both. A take with none
of the chosen layers falls back to the footage in grey (VACE's colourise task). The mask is white where the
model generates and black on kept frames (the previous segment's last frames, pinned keyframes), whose
video frame is the image to keep.
"""

from __future__ import annotations

import cv2
import numpy as np


def _grey3(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2)


def _plane(layer: np.ndarray) -> np.ndarray:
    """A layer as HxW float32 in [0, 1] (uint8 / uint16 / float, one or three channels)."""
    if layer.ndim == 3:
        layer = layer.max(axis=2)
    if layer.dtype == np.uint8:
        return layer.astype(np.float32) / 255.0
    if layer.dtype == np.uint16:
        return layer.astype(np.float32) / 65535.0
    return layer.astype(np.float32)


def depth_grey(depth: np.ndarray) -> np.ndarray:
    """Depth (any units, bigger = farther) as near-bright grey, stretched between the frame's 2nd and 98th
    percentiles (a frame's own range: deterministic, so a resumed segment gets the same control)."""
    plane = _plane(depth)
    valid = np.isfinite(plane)
    if not valid.any():
        return np.zeros(plane.shape, np.float32)
    near, far = np.percentile(plane[valid], [2, 98])
    span = max(float(far - near), 1e-6)
    return np.clip((far - np.nan_to_num(plane, nan=far)) / span, 0.0, 1.0)


def control_frame(layers: dict[str, np.ndarray], controls: list[str], size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """(HxWx3 uint8 control frame at `size` (width, height), what it was made of)."""
    used = [name for name in controls if name in layers]
    if not used:
        grey = cv2.cvtColor(layers["color"], cv2.COLOR_RGB2GRAY)
        return cv2.resize(_grey3(grey), size, interpolation=cv2.INTER_AREA), "grey footage"
    height, width = layers["color"].shape[:2]
    out = np.zeros((height, width, 3), np.float32)
    if "depth" in used:
        out = _grey3(depth_grey(layers["depth"]) * 0.7)  # dimmed so lines and limbs stay readable over it
    if "lineart" in used:
        lines = _plane(cv2.resize(layers["lineart"], (width, height)))
        out = np.maximum(out, _grey3(lines))
    if "pose" in used:
        pose = layers["pose"]
        pose = cv2.resize(pose, (width, height), interpolation=cv2.INTER_NEAREST)
        pose = _grey3(pose) if pose.ndim == 2 else pose[..., :3]
        pose = pose.astype(np.float32) / (255.0 if pose.dtype == np.uint8 else 1.0)
        drawn = pose.max(axis=2, keepdims=True) > 0.05
        out = np.where(drawn, pose, out)
    frame = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    interp = cv2.INTER_NEAREST if used == ["pose"] else cv2.INTER_AREA
    return cv2.resize(frame, size, interpolation=interp), " + ".join(used)


def fit_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB image resized to `size` (width, height)."""
    if image.shape[1::-1] == tuple(size):
        return image
    shrink = image.shape[1] > size[0]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
