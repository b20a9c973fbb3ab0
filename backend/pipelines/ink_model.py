"""Ink that follows the frame's own edges: a per-keyframe detector of where the style draws dark lines.

A stylized keyframe's ink sits on edges of its source frame. Carried to frame t along the flow, it lands a pixel
or two off those of frame t (and where the flow fails, as torn fragments), which costs more fidelity than a blur
does (toon clips: 1-2 dB behind the EbSynth-like baseline carried, 2-4 dB ahead redrawn). So the ink is
*redrawn* on frame t: a small logistic model maps edge features of a source frame (Canny at five thresholds: on a
2 px line, and the distance to the nearest edge, so it can learn how wide the style's lines are; the gradient's
log-magnitude) to the keyframe's ink, and is applied to frame t's own features. Which edges carry ink is the style's choice (a toon style inks
every strong edge, Freestyle only silhouettes and creases), so two models are fitted:
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
# ink carried as it is: its lines do not follow its source's edges closely enough (e.g. Freestyle's thick
# silhouettes over a textured render: 0.2; a toon style's edge ink: 0.67).
AGREEMENT = 0.45
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
    """A frame's edge features, compact: for each Canny threshold a code per pixel (uint8: twice the city-block
    distance to the nearest edge, capped at 4, plus 1 where the edge dilated to a 2 px line covers it), and the
    gradient's log-magnitude (float32)."""

    codes: np.ndarray      # len(CANNY) x H x W uint8
    magnitude: np.ndarray  # H x W float32


FEATURES = len(CANNY) * (len(DISTANCES) + 1) + 2  # the model's weights: see `_features_of`


def edge_maps(rgb: np.ndarray) -> EdgeMaps:
    """The edge features of a uint8 RGB frame: for each Canny threshold, the edges dilated to a 2 px line (as
    most inkers draw at an edge) and how far the nearest edge is (so the model can learn how wide the style's
    lines are); and the gradient's log-magnitude (how strong the edge is). All in uint8 OpenCV calls but the last."""
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    codes = np.empty((len(CANNY),) + grey.shape, np.uint8)
    thin = np.ones((2, 2), np.uint8)
    for i, (low, high) in enumerate(CANNY):
        edges = cv2.Canny(grey, low, high)
        distance = cv2.distanceTransform(cv2.bitwise_not(edges), cv2.DIST_L1, 3, dstType=cv2.CV_8U)
        line = cv2.dilate(edges, thin) >> 7  # 0 or 1
        cv2.add(cv2.min(distance, 4) << 1, line, dst=codes[i])
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return EdgeMaps(codes, np.log1p(cv2.magnitude(gx, gy)) * np.float32(0.2))


def _code_features(code: np.ndarray) -> list[np.ndarray]:
    """A code's features: on the 2 px line; nearest edge within each of DISTANCES."""
    steps = code >> 1
    return [code & 1] + [steps <= reach for reach in DISTANCES]


def _features_of(maps: EdgeMaps, pixels: np.ndarray) -> np.ndarray:
    """N x FEATURES float64 design matrix of the flat pixel indices `pixels` (the last column the constant 1)."""
    columns = []
    for codes in maps.codes:
        columns += _code_features(codes.reshape(-1)[pixels])
    columns += [maps.magnitude.reshape(-1)[pixels], np.ones(len(pixels))]
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
    """P(ink) per pixel (H x W float32) of a frame's edge maps under logistic `weights`: each threshold's part
    of the sum is looked up by code (no feature planes are made)."""
    per = len(DISTANCES) + 1
    codes = np.arange(10, dtype=np.uint8)  # every code edge_maps makes (steps 0..4, line or not)
    table_features = np.stack(_code_features(codes), axis=1).astype(np.float32)  # code -> its features
    logit = maps.magnitude * weights[-2] + weights[-1]
    for i, code_map in enumerate(maps.codes):
        table = table_features @ weights[i * per:(i + 1) * per].astype(np.float32)
        logit += np.take(table, code_map)
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -30.0, 30.0)))


def hard(probability: np.ndarray) -> np.ndarray:
    """Ink as a line with a hard edge: P(ink) through a steep smoothstep about 1/2. (P itself is the best guess
    in the mean-square sense, but draws uncertain lines grey: the toon clips kept 0.3-0.5 of their sharpness.)"""
    x = np.clip((probability - HARD[0]) * np.float32(1.0 / (HARD[1] - HARD[0])), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


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
