"""Ink that follows the frame's own edges: a per-keyframe detector of where the style draws dark lines.

A stylized keyframe's ink sits on edges of its source frame. Carried to frame t along the flow, it lands a pixel
or two off those of frame t (and where the flow fails, as torn fragments), which costs more fidelity than a blur
does (toon clips: 1-2 dB behind the EbSynth-like baseline carried, 2-4 dB ahead redrawn). So the ink is
*redrawn* on frame t: a small logistic model maps edge features of a source frame (Canny edges at five
thresholds: on a 2 px line, and within 1, 2, 3 px, so it can learn how wide the style's lines are and on how
strong an edge it draws them; the gradient's log-magnitude) to the keyframe's ink, and is applied to frame t's own
features. Which edges carry ink is the style's choice (a toon style inks every strong edge, Freestyle only
silhouettes and creases), so two models are fitted:
  - `near`: among pixels within GATE px of the keyframe's ink, where the ink carried along the flow says the
    style draws; applied only there;
  - `anywhere`: over the whole frame, for pixels no flow vouches for (occluded in both keyframes), where the
    carried ink says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CANNY = ((20, 40), (40, 80), (60, 120), (90, 180), (130, 260))  # thresholds of the edge features (grey levels)
DISTANCES = (1, 2, 3)  # px (city-block) from the nearest edge: the bins of the features
# |residual| of the dark side (luma, unit colour) over which a keyframe pixel goes from colour to ink.
INK_LOW, INK_HIGH = 0.08, 0.2
GATE = 3          # px: ink is redrawn within this distance of the carried ink (the flow's error at edges)
SAMPLES = 8000    # keyframe pixels each model is fitted on (a random subset: plenty for FEATURES weights)
NEWTON_STEPS = 8
MIN_SHARE = 1e-3  # a keyframe with less ink than this (a pixel-wise style) has none
HARD = (0.25, 0.5)  # P(ink) over which a pixel goes from no ink to ink (see `hard`)
# A keyframe whose own ink the model redraws worse than this (intersection over union, near the ink) keeps its
# ink carried as it is: its lines do not follow its source's edges closely enough. Measured on the benchmark's
# keyframes: the Blender clip's Freestyle silhouettes over a textured render 0.39-0.42 (redrawn, it lost 2 dB);
# toon ink on real footage 0.67-0.98; the tests' small inked scenes 0.56-0.75.
AGREEMENT = 0.5
RIDGE = 1e-4      # logistic regression's L2 weight (no feature may buy certainty it has not earned)


@dataclass
class InkModel:
    near: np.ndarray      # logistic weights (features + bias) among pixels near the keyframe's ink
    anywhere: np.ndarray  # the same over the whole frame
    share: float          # fraction of the keyframe's pixels that are ink (0: a style without ink)
    agreement: float      # on the keyframe itself, near its ink: intersection over union of drawn and true ink


def ink_amount(residual: np.ndarray, literal: np.ndarray) -> np.ndarray:
    """How much of each keyframe pixel is ink (0..1): the colour model does not explain it (`literal`, 0..1)
    and it is darker than the model says (the residual's luma below -INK_LOW)."""
    luma = residual @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = np.clip((-luma - INK_LOW) * np.float32(1.0 / (INK_HIGH - INK_LOW)), 0.0, 1.0)
    return (literal * dark * dark * (3.0 - 2.0 * dark)).astype(np.float32)


@dataclass
class EdgeMaps:
    """A frame's edge features, compact (uint8 maps, looked up through tables by `predict`): for each reach, the
    strongest Canny level (1..len(CANNY), 0 none) of an edge within it: the edge drawn as a 2 px line, then
    within each of DISTANCES; and the gradient's magnitude (|dx| + |dy| of Sobel, / 4, saturated)."""

    levels: np.ndarray     # (1 + len(DISTANCES)) x H x W uint8
    magnitude: np.ndarray  # H x W uint8


FEATURES = (1 + len(DISTANCES)) * len(CANNY) + 2  # the model's weights: see `_features_of`
# log(1 + magnitude), the magnitude feature of each uint8 value (scaled like the binary features, about 0..1)
_LOG_MAGNITUDE = (np.log1p(np.arange(256, dtype=np.float32) * 4.0) * 0.15).astype(np.float32)


def edge_maps(rgb: np.ndarray) -> EdgeMaps:
    """The edge features of a uint8 RGB frame (see EdgeMaps): where the frame's edges are, how strong, and how
    far each pixel is from one, so the model can learn how wide and on which edges the style draws its lines.
    Canny edges are nested by threshold closely enough that one map of each edge pixel's strongest level, grown
    by a dilation per reach, stands for a distance transform per threshold (a third of the cost)."""
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    level = np.zeros(grey.shape, np.uint8)
    for i, (low, high) in enumerate(CANNY):
        cv2.max(level, cv2.bitwise_and(cv2.Canny(grey, low, high), i + 1), dst=level)
    levels = np.empty((1 + len(DISTANCES),) + grey.shape, np.uint8)
    cv2.dilate(level, np.ones((2, 2), np.uint8), dst=levels[0])
    for i, reach in enumerate(DISTANCES):
        cv2.dilate(level, _diamond(reach), dst=levels[i + 1])
    dx = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 1, 0), alpha=0.25)
    dy = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 0, 1), alpha=0.25)
    return EdgeMaps(levels, cv2.add(dx, dy))


def _diamond(reach: int) -> np.ndarray:
    """The city-block disc of radius `reach` as a structuring element."""
    span = np.abs(np.arange(-reach, reach + 1))
    return ((span[:, None] + span[None, :]) <= reach).astype(np.uint8)


def _features_of(maps: EdgeMaps, pixels: np.ndarray) -> np.ndarray:
    """N x FEATURES float64 design matrix of the flat pixel indices `pixels`: for each reach and Canny level, an
    edge of that level or stronger within the reach; the log magnitude; the constant 1."""
    columns = []
    for level_map in maps.levels:
        values = level_map.reshape(-1)[pixels]
        columns += [values >= level for level in range(1, len(CANNY) + 1)]
    columns += [_LOG_MAGNITUDE[maps.magnitude.reshape(-1)[pixels]], np.ones(len(pixels))]
    return np.stack(columns, axis=1).astype(np.float64)


def near(ink: np.ndarray, radius: int = GATE) -> np.ndarray:
    """1 within `radius` px of ink (> 0.5), else 0 (float32)."""
    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate((ink > 0.5).astype(np.uint8), kernel).astype(np.float32)


def fit(maps: EdgeMaps, ink: np.ndarray, seed: int = 0) -> InkModel:
    """The keyframe's two ink models (see the module docstring) from its source's edge maps and ink amount."""
    share = float(ink.mean())
    if share < MIN_SHARE:  # nothing to learn: a style without ink never draws any
        off = np.zeros(FEATURES, np.float32)
        off[-1] = -20.0
        return InkModel(off, off.copy(), share, 0.0)
    target = ink.reshape(-1)
    rng = np.random.default_rng(seed)
    gate = near(ink) > 0
    models = []
    for pool in (np.flatnonzero(gate), np.arange(target.size)):
        pick = pool if pool.size <= SAMPLES else rng.choice(pool, SAMPLES, replace=False)
        models.append(_logistic(_features_of(maps, pick), target[pick].astype(np.float64)))
    drawn = hard(predict(models[0], maps))[gate] > 0.5
    true = target[gate.reshape(-1)] > 0.5
    agreement = float((drawn & true).sum() / max(1, (drawn | true).sum()))
    return InkModel(models[0], models[1], share, agreement)


def predict(weights: np.ndarray, maps: EdgeMaps) -> np.ndarray:
    """P(ink) per pixel (H x W float32) of a frame's edge maps under logistic `weights`: each map's part of the sum
    is one table lookup (cv2.LUT), no feature planes are made."""
    logit = cv2.LUT(maps.magnitude, _LOG_MAGNITUDE * weights[-2] + weights[-1])
    count = len(CANNY)
    for i, level_map in enumerate(maps.levels):
        table = np.zeros(256, np.float32)  # level v -> the sum of the weights of levels 1..v
        table[1:count + 1] = np.cumsum(weights[i * count:(i + 1) * count])
        logit += cv2.LUT(level_map, table)
    return _sigmoid(logit)


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    e = cv2.exp(cv2.min(cv2.multiply(logit, -1.0), 30.0))
    return cv2.divide(1.0, cv2.add(e, 1.0))


def hard(probability: np.ndarray, bounds: tuple[float, float] = HARD) -> np.ndarray:
    """Ink as a line with a hard edge: P(ink) through a steep smoothstep (`bounds`). (P itself is the best guess
    in the mean-square sense, but draws uncertain lines grey: the toon clips kept 0.3-0.5 of their sharpness.)"""
    x = cv2.min(cv2.max(cv2.subtract(probability, bounds[0]), 0.0), bounds[1] - bounds[0])
    x = cv2.multiply(x, 1.0 / (bounds[1] - bounds[0]))
    return cv2.multiply(cv2.multiply(x, x), cv2.subtract(3.0, cv2.multiply(x, 2.0)))


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights of L2-regularized logistic regression (soft targets y in [0, 1]) by Newton's method. The sums
    are einsum's own loops, not BLAS: on a busy machine BLAS's thread pool cost 10-100x this small fit's work."""
    w = np.zeros(x.shape[1])
    reg = RIDGE * len(y) * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # the bias is free
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(np.einsum("ni,i->n", x, w), -30, 30)))
        grad = np.einsum("ni,n->i", x, p - y) + reg @ w
        hess = np.einsum("ni,nj->ij", x * (p * (1 - p))[:, None], x) + reg + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w.astype(np.float32)
