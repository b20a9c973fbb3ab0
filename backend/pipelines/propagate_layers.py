"""Small helpers the propagation's parts share: output layers finished, images brought to a size."""

from __future__ import annotations

import cv2
import numpy as np


def finish(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, layer in layers.items():
        if name == "color":  # float here (warped or mixed): rounded once
            # Cubic overshoot below 0 clipped in place, then rounded and saturated at 255 in one OpenCV pass.
            out[name] = cv2.convertScaleAbs(np.maximum(layer, 0.0, out=layer))
        elif name == "alpha":
            out[name] = np.clip(layer, 0.0, 1.0).astype(np.float32)
        else:
            out[name] = layer.astype(np.float32)
    return out


def fit_width(shape, width: int) -> tuple[int, int]:
    """(w, h) of an image of `shape` brought down to at most `width` wide, aspect kept."""
    height, full = shape[:2]
    width = min(full, width)
    return width, max(8, round(height * width / full))


def resize(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """`image` at `size` (w, h): greys by area, as DIS shrinks them; weights linearly, to upsample them."""
    return image if image.shape[1::-1] == tuple(size) else cv2.resize(image, size, interpolation=interpolation)
