"""How wide the fringe is in a shot: the edge radius the keyer's fringe solve needs, measured from the frames.

A sharp outline passes from screen to solid subject within a pixel or two (antialiasing). Motion blur and soft
focus spread the passage over many pixels, and a fringe solve one pixel wide then keys most of the blur as solid.
Along every row and every column, each run of pixels that are neither screen (raw key at most the tolerance) nor
clearly subject (raw key SOLID or more) between a screen pixel and a subject pixel is one crossing of the outline;
the median length of these runs says how wide the outline is. Runs between screen and screen (strands) do not
count. The raw key reaches SOLID at roughly a third of the subject's coverage for a strongly coloured subject, so
a run of n pixels is a passage of about 3n: the radius is 1 for runs of a pixel, and grows RADIUS_PER_RUN per
pixel of run beyond it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from backend.pipelines.key_difference import SOLID, raw_key
from backend.pipelines.screen_model import ScreenModel

if TYPE_CHECKING:
    from backend.pipelines.chroma_key import ChromaKeyParams

RADIUS_PER_RUN = 1.5      # fringe radius per pixel of the median screen -> subject run beyond the first
MAX_RADIUS = 16
RAMP = 0.5               # share of the in-between range of the raw key a run of two pixels or more must span
MIN_CROSSINGS = 20        # fewer crossings than this (no figure, a speck): the sharp outline's radius


def with_fringe_radius(params: "ChromaKeyParams", frames: list[np.ndarray], screen: ScreenModel | None
                       ) -> "ChromaKeyParams":
    """`params` with edge_radius 0 (measure it) replaced by the shot's, from a few of its frames (linear RGB)."""
    if params.edge_radius:
        return params
    if params.model != "difference" or screen is None or not frames:
        return replace(params, edge_radius=1)
    return replace(params, edge_radius=fringe_radius(frames, screen, params.tolerance))


def fringe_radius(frames: list[np.ndarray], screen: ScreenModel, tolerance: float) -> int:
    """The edge radius for a shot: the median of its frames' (a still frame among moving ones does not decide)."""
    return int(np.median([_frame_radius(rgb, screen, tolerance) for rgb in frames]))


def _frame_radius(rgb: np.ndarray, screen: ScreenModel, tolerance: float) -> int:
    runs = _crossings(raw_key(rgb, screen), tolerance)
    if len(runs) < MIN_CROSSINGS:
        return 1
    return int(min(MAX_RADIUS, 1 + round(RADIUS_PER_RUN * max(0.0, float(np.median(runs)) - 1.0))))


def _crossings(raw: np.ndarray, tolerance: float) -> np.ndarray:
    """Lengths of the runs of in-between pixels from screen to subject, along rows and along columns."""
    return np.concatenate([_runs(raw, tolerance), _runs(np.ascontiguousarray(raw.T), tolerance)])


def _runs(raw: np.ndarray, tolerance: float) -> np.ndarray:
    """Per row: lengths of the runs of in-between pixels with screen at one end and subject at the other, and,
    longer than a pixel, that ramp: their raw key spans at least RAMP of the in-between range. A flat run (the
    shaded side of a costume near the screen's colour, keyed part way all across) is not a wide outline."""
    kind = np.where(raw <= tolerance, 0, np.where(raw >= SOLID, 2, 1)).astype(np.int8)
    w = kind.shape[1]
    step = np.diff(np.pad((kind == 1).astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)                  # same rows, in the same order: runs do not overlap
    padded = np.pad(kind, ((0, 0), (1, 1)), constant_values=-1)
    before, after = padded[rows, starts], padded[rows, ends + 1]
    crossing = ((before == 0) & (after == 2)) | ((before == 2) & (after == 0))
    rows, starts, ends = rows[crossing], starts[crossing], ends[crossing]
    if not len(rows):
        return np.zeros(0, np.int64)
    flat = np.append(raw.ravel(), 0.0)                 # reduceat over [start, end) of each run, interleaved
    bounds = np.stack([rows * w + starts, rows * w + ends], 1).ravel()
    span = np.maximum.reduceat(flat, bounds)[::2] - np.minimum.reduceat(flat, bounds)[::2]
    lengths = ends - starts
    return lengths[(lengths == 1) | (span >= RAMP * (SOLID - tolerance))]
