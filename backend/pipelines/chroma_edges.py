"""The parts of keying that make edges right: the screen's real colour, and alpha unmixed at the fringe.

A pixel on the subject's edge is a mix, p = a * subject + (1 - a) * screen. A fixed ramp on its
distance from the screen colour gets `a` wrong wherever the subject's own colour is far from the ramp's
end (a red shirt reaches "opaque" at a = 0.3). Here the subject's colour at the fringe is estimated from
the solid subject pixels next to it, and `a` is solved from the mix along the screen -> subject line.
"""

from __future__ import annotations

import cv2
import numpy as np

DOMINANCE = 0.12        # how much the screen channel must exceed the others for a pixel to count as screen
MIN_SCREEN_SHARE = 0.01


def sample_screen(rgb: np.ndarray, pure: np.ndarray) -> np.ndarray:
    """The screen's actual colour in this frame (median of clearly screen-hued pixels), or `pure` if too few."""
    channel = int(np.argmax(pure))
    others = [c for c in range(3) if c != channel]
    excess = rgb[..., channel] - np.maximum(rgb[..., others[0]], rgb[..., others[1]])
    mask = excess > DOMINANCE
    if mask.mean() < MIN_SCREEN_SHARE:
        return pure
    return np.median(rgb[mask], axis=0).astype(np.float32)


def unmix_alpha(chroma: np.ndarray, key_chroma: np.ndarray, dist: np.ndarray, lo: float, hi: float,
                ramp: np.ndarray, edge_radius: int) -> np.ndarray:
    """Alpha with fringe pixels solved against the nearby subject colour; `ramp` where no subject is near."""
    solid = (dist >= hi).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * edge_radius + 1, 2 * edge_radius + 1))
    core = cv2.erode(solid, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    sigma = 2.0 * edge_radius + 1.0
    weight = cv2.GaussianBlur(core.astype(np.float32), (0, 0), sigma)
    subject = np.stack(
        [cv2.GaussianBlur(np.where(core, chroma[..., i], 0).astype(np.float32), (0, 0), sigma) for i in range(2)], -1
    ) / np.maximum(weight, 1e-6)[..., None]
    towards_subject = subject - key_chroma
    reach = (towards_subject ** 2).sum(-1)
    along = ((chroma - key_chroma) * towards_subject).sum(-1)
    solved = np.clip(along / np.maximum(reach, 1e-12), 0.0, 1.0)
    strength = float(np.linalg.norm(key_chroma)) or 1.0
    usable = (weight > 1e-3) & (np.sqrt(reach) / strength > hi)   # a subject colour clearly off the screen's
    alpha = np.where(usable, solved, ramp)
    alpha = np.where(core, 1.0, np.where(dist <= lo, 0.0, alpha))
    return alpha.astype(np.float32)


def unmix_colour(rgb: np.ndarray, alpha: np.ndarray, key: np.ndarray, min_alpha: float = 0.05) -> np.ndarray:
    """Straight subject colour at the fringe: remove the screen's share, (p - (1 - a) * screen) / a."""
    a = alpha[..., None]
    subject = (rgb - (1.0 - a) * key) / np.maximum(a, min_alpha)
    return np.where(a >= min_alpha, np.clip(subject, 0.0, 1.0), rgb).astype(np.float32)
