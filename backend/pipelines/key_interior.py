"""The keyed figure's solid interior: what the screen cannot reach is subject, whatever its colour.

Per pixel, a subject lit by light bounced off the screen (the shaded side of a pale green shirt) looks like
a mix of subject and screen, and a dark subject in shade like a shadow on the screen. Space tells them apart:

- a partial pixel is a mix only near the screen. Where alpha is partial but flat (no edge runs through it),
  reasonably high, and more than INTERIOR_REACH pixels from any screen, it is the subject's own shading: 1.
  Motion blur and strands are partial too, but they ramp (not flat) or alternate with screen (low minimum).
- screen-coloured islands inside the figure (not connected to the screen around it) that are darker than that
  screen near them are dark subject, not holes: 1. A real hole (between arm and body) shows the screen at the
  screen's level, and stays screen; so does a gap between strands of hair.
"""

from __future__ import annotations

import cv2
import numpy as np

from backend.pipelines.srgb import LINEAR_OF_U8

INTERIOR_REACH = 1.5   # pixels from the screen beyond which a flat partial alpha cannot be a mix (antialiasing: ~1 px;
                       # within 1.5 px: the 3x3 neighbourhood)
INTERIOR_MIN = 0.4     # lowest alpha in a 3x3 neighbourhood for it to count as the subject's own shading
INTERIOR_FLAT = 0.15   # most alpha may vary in that neighbourhood (more: an edge, a ramp, strands)
HOLE_LIT = 0.7         # an enclosed screen-coloured island at least this bright (share of the screen near it) is a hole
NEAR_SIGMA = 8.0       # how far around the figure the screen an island is compared with is looked for
SCREEN_ALPHA = 0.02    # alpha at or below which a pixel is taken for screen here
_AROUND = np.ones((3, 3), np.uint8)


def fill_interior(alpha: np.ndarray, color: np.ndarray, channel: int) -> np.ndarray:
    """`alpha` of an 8-bit sRGB frame (float32, modified in place and returned) with the figure's interior solid.

    Works on the box around the pixels of alpha INTERIOR_MIN or more, plus a margin: nothing outside it can be
    filled (a stray speck of noise on the screen does not widen it), and any way out of it reaches the screen.
    """
    rows, cols = np.nonzero((alpha >= INTERIOR_MIN).any(1))[0], np.nonzero((alpha >= INTERIOR_MIN).any(0))[0]
    if not len(rows):
        return alpha
    box = (slice(max(rows[0] - 2, 0), rows[-1] + 3), slice(max(cols[0] - 2, 0), cols[-1] + 3))
    value = cv2.LUT(np.ascontiguousarray(color[box][..., channel]), LINEAR_OF_U8)
    alpha[box] = solid_interior(alpha[box], alpha[box] <= SCREEN_ALPHA, value)
    return alpha


def solid_interior(alpha: np.ndarray, screenish: np.ndarray, value: np.ndarray) -> np.ndarray:
    """`alpha` (float32, modified in place and returned) with the figure's interior made solid.

    `screenish`: bool, the pixels keyed as screen; `value`: float32, the screen channel (linear). The part given
    is taken as surrounded by screen (its border touches the screen around the figure).
    """
    count, labels = cv2.connectedComponents(screenish.astype(np.uint8), connectivity=8)
    screen_component = np.zeros(count, bool)
    screen_component[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    screen_component[0] = False                       # label 0: the pixels not keyed as screen
    screen = screen_component[labels]
    island = screenish & ~screen
    if island.any():
        ys, xs = np.nonzero(island)
        dark = ~_lit_like_the_screen(labels[ys, xs], count, value[ys, xs], _screen_near(screen, value, (ys, xs)))
        alpha[ys[dark], xs[dark]] = 1.0               # enclosed dark islands: dark subject
        screen[ys[~dark], xs[~dark]] = True           # enclosed lit islands: real holes
    reached = cv2.dilate(screen.astype(np.uint8), _AROUND).astype(bool)   # within INTERIOR_REACH of the screen
    low, high = cv2.erode(alpha, _AROUND), cv2.dilate(alpha, _AROUND)
    alpha[~reached & (low >= INTERIOR_MIN) & (high - low <= INTERIOR_FLAT)] = 1.0
    return alpha


def _screen_near(screen: np.ndarray, value: np.ndarray, at: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The level of the screen around the figure near each pixel of `at` (a smooth field: made at a quarter size)."""
    h, w = screen.shape
    size = (max(1, w // 4), max(1, h // 4))
    weight = cv2.resize(screen.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    total = cv2.resize(np.where(screen, value, 0.0).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    weight = cv2.GaussianBlur(weight, (0, 0), NEAR_SIGMA / 4, borderType=cv2.BORDER_REPLICATE)
    total = cv2.GaussianBlur(total, (0, 0), NEAR_SIGMA / 4, borderType=cv2.BORDER_REPLICATE)
    ys, xs = np.minimum(at[0] // 4, size[1] - 1), np.minimum(at[1] // 4, size[0] - 1)
    return total[ys, xs] / np.maximum(weight[ys, xs], 1e-6)


def _lit_like_the_screen(labels: np.ndarray, count: int, own: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Per pixel of the islands: is its island about as bright as the screen near it (a real hole)?"""
    own_sum, near_sum = np.bincount(labels, own, count), np.bincount(labels, near, count)
    return (own_sum >= HOLE_LIT * near_sum)[labels]
