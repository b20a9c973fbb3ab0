"""Ink by colour pair: where a style draws its lines, judged by the two colours a line would separate.

A style that inks silhouettes (Freestyle over a textured render) draws a line where the figure meets the wall, not
where two squares of the wall's checker meet, though both are strong edges of the source: edge features alone
cannot tell them apart (ink_model's whole-frame fit, on the benchmark's Blender clip's gap frames: P(ink) 0.10 on
the true lines, 0.014 elsewhere). The pair of colours on the two sides of the edge can: yellow body against pink
wall is inked in the keyframe, pink against cream is not (P 0.37 on the true lines, 0.006 elsewhere).

Each pixel is given the unordered pair of colour bins (colour_model.colour_bins) found REACH px to either side of it
across the grey gradient; a keyframe's table holds, for each pair, the share of its pixels that are ink. Applied to
frame t's own pixels, the table draws lines where frame t's colours meet, so the line sits on frame t's boundary
whatever the flow did, and nowhere two colours the style does not separate meet. A line that lies off the edge or
is wider than 2 REACH (a thick ring drawn outside a disc) is not a pair's: the table then redraws little of the
keyframe's own ink (`PairModel.agreement`), and the caller keeps to its other models.
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
HARD = (0.25, 0.5)  # P(ink) over which a pixel goes from no ink to ink (ink_model.hard)
# A keyframe whose own ink its table redraws worse than this (intersection over union) has lines that are not a colour
# pair's. The Blender clip's keyframes: 0.47-0.53; the tests' 8 px ring astride a disc's edge and 4 px line outside it
# 0.04-0.09.
AGREEMENT = 0.25


@dataclass
class PairModel:
    table: np.ndarray  # PAIRS float32: for each colour pair, the share of the keyframe's pixels that are ink
    agreement: float   # on the keyframe itself: intersection over union of its ink and the ink the table redraws


def pair_index(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's unordered pair of colour bins, read REACH px to either side across the grey gradient (int32 H x W;
    in a flat area both are the pixel's own colour)."""
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    dx, dy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    step = cv2.divide(float(REACH), cv2.add(cv2.magnitude(dx, dy), 1e-6))
    dx, dy = cv2.multiply(dx, step), cv2.multiply(dy, step)
    xs, ys = _grid(*grey.shape)
    smooth = cv2.GaussianBlur(rgb, (3, 3), 0)
    one = _bins(cv2.remap(smooth, cv2.add(xs, dx), cv2.add(ys, dy), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    other = _bins(cv2.remap(smooth, cv2.subtract(xs, dx), cv2.subtract(ys, dy), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE))
    low = np.minimum(one, other).astype(np.int32)
    low *= COLOURS
    low += np.maximum(one, other)
    return low


def _bins(rgb: np.ndarray) -> np.ndarray:
    """colour_model.colour_bins of a uint8 RGB image, as uint16, in OpenCV's vector ops."""
    top = cv2.LUT(rgb, _TOP)  # each channel's bin, shifted into its place in the index
    r, g, b = cv2.split(top.astype(np.uint16))
    return cv2.add(cv2.add(cv2.multiply(r, BINS * BINS), cv2.multiply(g, BINS)), b)


@lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def fit(source: np.ndarray, ink: np.ndarray) -> PairModel:
    """A keyframe's model from its uint8 RGB source and its ink (H x W, 0..1): for each colour pair, the share of its
    pixels that are ink, drawn toward none by PRIOR pixels; and how much of its own ink that redraws."""
    index = pair_index(source)
    flat = index.reshape(-1)
    inked = np.bincount(flat, weights=ink.reshape(-1).astype(np.float64), minlength=PAIRS)
    seen = np.bincount(flat, minlength=PAIRS)
    table = (inked / (seen + PRIOR)).astype(np.float32)
    drawn, true = np.take(table, index) > HARD[1], ink > 0.5
    return PairModel(table, float((drawn & true).sum() / max(1, (drawn | true).sum())))


def predict(table: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """P(ink) of each pixel of a uint8 RGB frame under a table (`PairModel.table`, or a mix of them): H x W float32."""
    return np.take(table, pair_index(rgb))
