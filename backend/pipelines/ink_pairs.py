"""Ink by colour pair: where a style draws its lines, judged by the two colours a line would separate.

A style that inks silhouettes (Freestyle over a textured render) draws a line where the figure meets the wall, not
where two squares of the wall's checker meet, though both are strong edges of the source: edge features alone
cannot tell them apart (ink_model's whole-frame fit, on the benchmark's Blender clip's gap frames: P(ink) 0.10 on
the true lines, 0.014 elsewhere). The pair of colours on the two sides of the edge can: yellow body against pink
wall is inked in the keyframe, pink against cream is not (P 0.39 on the true lines, 0.011 elsewhere).

Each pixel is described twice by colour bins (colour_model.colour_bins), read REACH px to either side of it across
the grey gradient: the unordered pair of the two (the edge it sits on), and the ordered pair of its own bin and the
bin on the side whose grey differs more from its own (which side of that edge it is on: a line drawn astride the
silhouette may reach further into the wall than into the figure). A keyframe's two tables hold, for each pair, the share of its
pixels that are ink; P(ink) is the larger of the two lookups. Applied to frame t's own pixels, the tables draw
lines where frame t's colours meet, so a line sits on frame t's boundary whatever the flow did, and nowhere two
colours the style does not separate meet. A line that lies off the edge or is much wider than 2 REACH (a thick
ring drawn round a disc) is not a pair's: the tables then redraw little of the keyframe's own ink
(`PairModel.agreement`), and the caller keeps to its other models.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from backend.pipelines.colour_model import BINS

REACH = 1.5   # px to either side of a pixel, across its edge, where the two colours are read
PRIOR = 2.0   # pixels' worth of "no ink" in every pair: a pair seen once or twice is not taken as inked
COLOURS = BINS ** 3
PAIRS = COLOURS ** 2
_TOP = (np.arange(256) >> (9 - BINS.bit_length())).astype(np.uint8)  # a uint8 channel's bin (BINS a power of two)
_TOP_TIMES_BINS = _TOP * np.uint8(BINS)
HARD = (0.25, 0.5)  # P(ink) over which a pixel goes from no ink to ink (ink_model.hard)
# A keyframe whose own ink its tables redraw worse than this (intersection over union) has lines that are not a
# colour pair's. The Blender clip's keyframes: 0.36-0.51; the tests' 8 px ring astride a disc's edge and 4 px line
# outside it: under 0.09.
AGREEMENT = 0.25
# A keyframe's pairs are also counted as they would look in shadow (its source darkened to SHADE), each such pixel
# SHADE_WEIGHT of a pixel: a figure walking into a cast shadow meets the wall in colours its keyframes never showed
# (the Blender clip's, behind the pillar at frames 15-19), and without them no line was redrawn round it. Light, so a
# pair a keyframe shows lit keeps its own count. Blender clip, toon (bench/propagate_real.py): 23.48 dB without,
# 23.60 with 0.6 at 0.1 (0.1-0.25: 23.57-23.60; 0.5: 23.52; 0.6 and 0.75 together at 0.5: 23.51); frame 17
# 21.96 -> 22.63 dB.
SHADE, SHADE_WEIGHT = 0.6, 0.1


@dataclass
class PairModel:
    tables: np.ndarray  # 2 x PAIRS float32: for each unordered, then ordered, pair, the share of pixels that are ink
    agreement: float    # on the keyframe itself: intersection over union of its ink and the ink the tables redraw
    counts: np.ndarray | None = None  # 2 x 2 x PAIRS float32: (inked, seen) pixels of each pair, unordered then ordered


def describe(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's unordered pair of colour bins read REACH px to either side across the grey gradient, and its
    ordered pair (its own bin, the bin on the side whose grey differs more from its own): int32 H x W each; in a
    flat area both pairs are the pixel's own colour twice."""
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    dx, dy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    step = cv2.divide(float(REACH), cv2.add(cv2.magnitude(dx, dy), 1e-6))
    dx, dy = cv2.multiply(dx, step), cv2.multiply(dy, step)
    xs, ys = _grid(*grey.shape)
    own = _bins(cv2.GaussianBlur(rgb, (3, 3), 0))
    sides = []
    for sign in (cv2.add, cv2.subtract):  # ahead across the gradient, then behind
        mx, my = sign(xs, dx), sign(ys, dy)
        bins = cv2.remap(own, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        sides.append((bins, cv2.absdiff(cv2.remap(grey, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                                        grey)))
    (one, off_one), (other, off_other) = sides
    unordered = np.minimum(one, other).astype(np.int32)
    unordered *= COLOURS
    unordered += np.maximum(one, other)
    ordered = own.astype(np.int32)
    ordered *= COLOURS
    ordered += np.where(off_one > off_other, one, other)
    return unordered, ordered


def _bins(rgb: np.ndarray) -> np.ndarray:
    """colour_model.colour_bins of a uint8 RGB image, as uint16, in OpenCV's vector ops."""
    r, g, b = cv2.split(rgb)
    red_green = cv2.add(cv2.LUT(r, _TOP_TIMES_BINS), cv2.LUT(g, _TOP))  # fits a byte: at most BINS^2 - 1
    return cv2.add(cv2.multiply(red_green, BINS, dtype=cv2.CV_16U), cv2.LUT(b, _TOP), dtype=cv2.CV_16U)


@lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def fit(source: np.ndarray, ink: np.ndarray) -> PairModel:
    """A keyframe's model from its uint8 RGB source and its ink (H x W, 0..1): for each colour pair, the share of its
    pixels that are ink (counted lit and, lightly, in shadow: SHADE), drawn toward none by PRIOR pixels; and how much
    of its own ink that redraws."""
    indices = describe(source)
    weights = ink.reshape(-1).astype(np.float64)
    inked, seen = np.zeros((2, PAIRS)), np.zeros((2, PAIRS))
    for image, share in ((source, 1.0), (cv2.convertScaleAbs(source, alpha=SHADE), SHADE_WEIGHT)):
        for i, index in enumerate(indices if image is source else describe(image)):
            flat = index.reshape(-1)
            inked[i] += share * np.bincount(flat, weights=weights, minlength=PAIRS)
            seen[i] += share * np.bincount(flat, minlength=PAIRS)
    tables = (inked / (seen + PRIOR)).astype(np.float32)
    drawn, true = _lookup(tables, indices) > HARD[1], ink > 0.5
    return PairModel(tables, float((drawn & true).sum() / max(1, (drawn | true).sum())),
                     np.stack([inked, seen], 1).astype(np.float32))


def pooled(models: list[PairModel], weights: list[float]) -> np.ndarray:
    """Tables (as PairModel.tables) of several keyframes' pixels counted together, each keyframe's weighted: a pair
    one keyframe never showed (the figure's against a wall it had not reached yet) keeps the other's share of ink,
    which the mean of the two tables halved (under HARD: no line). Blender clip, toon: 23.63 -> 23.66 dB."""
    counts = sum(model.counts * np.float32(weight) for model, weight in zip(models, weights))
    return counts[:, 0] / (counts[:, 1] + np.float32(PRIOR))


def predict(tables: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """P(ink) of each pixel of a uint8 RGB frame under a keyframe's tables (`PairModel.tables`, or a mix of them):
    H x W float32."""
    return _lookup(tables, describe(rgb))


def _lookup(tables: np.ndarray, indices: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.maximum(np.take(tables[0], indices[0]), np.take(tables[1], indices[1]))
