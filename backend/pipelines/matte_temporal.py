"""Temporal smoothing of a matte: average each pixel's alpha with its neighbours in time where the image
did not change there, so a static edge stops flickering while a moving one does not leave a ghost."""

from __future__ import annotations

import cv2
import numpy as np


def _guide(color: np.ndarray) -> np.ndarray:
    """Colour in [0, 1], lightly blurred so sensor noise does not count as change."""
    unit = color[..., :3].astype(np.float32) / (255.0 if color.dtype == np.uint8 else 1.0)
    return cv2.GaussianBlur(unit, (0, 0), 1.0)


def smooth_alpha(center: tuple[np.ndarray, np.ndarray], neighbours: list[tuple[np.ndarray, np.ndarray]],
                 tolerance: float) -> np.ndarray:
    """Alpha of `center` (colour, alpha) averaged with `neighbours` weighted by how alike the colour stayed.

    A neighbour's weight at a pixel is exp(-(d / tolerance)^2), d the largest channel change there (0..1).
    """
    color, alpha = center
    guide = _guide(color)
    total = alpha.astype(np.float32).copy()
    weights = np.ones_like(total)
    for other_color, other_alpha in neighbours:
        change = np.abs(_guide(other_color) - guide).max(axis=-1)
        w = np.exp(-((change / max(tolerance, 1e-6)) ** 2))
        total += w * other_alpha
        weights += w
    return np.clip(total / weights, 0.0, 1.0).astype(np.float32)
