"""Run an image-to-image function tile by tile, with overlapping tiles blended so no seam shows.

Each tile's output is trusted less toward its edges (where it saw less context): in an overlap, the
weight of one tile ramps down as the next one ramps up, and the outer third of the overlap on each side
is left to the neighbour entirely. Tile origins can be aligned to a multiple (a Swin window) so each
tile's windows fall where the whole image's would, and an interior tile computes what the whole-image
pass computes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """[start, end) spans covering 0..length: about `tile` long, overlapping by at least `overlap`, starts aligned."""
    if length <= tile:
        return [(0, length)]
    stride = max(align, (tile - overlap) // align * align)
    starts, start = [], 0
    while start + tile < length:
        starts.append(start)
        start += stride
    starts.append(max(0, (length - tile) // align * align))
    starts = sorted(set(starts))
    return [(s, length if i == len(starts) - 1 else min(length, s + tile)) for i, s in enumerate(starts)]


def _ramp(size: int, before: int, after: int) -> np.ndarray:
    """1-D weight over a tile: 1 inside, ramping to 0 across the overlaps shared with the tiles before/after."""
    x = np.arange(size, dtype=np.float32) + 0.5
    weight = np.ones(size, np.float32)
    if before > 0:
        margin = before / 3.0
        weight = np.minimum(weight, np.clip((x - margin) / max(before - 2 * margin, 1e-6), 0.0, 1.0))
    if after > 0:
        margin = after / 3.0
        weight = np.minimum(weight, np.clip((size - x - margin) / max(after - 2 * margin, 1e-6), 0.0, 1.0))
    return weight


def _overlaps(spans: list[tuple[int, int]], i: int) -> tuple[int, int]:
    before = spans[i - 1][1] - spans[i][0] if i > 0 else 0
    after = spans[i][1] - spans[i + 1][0] if i + 1 < len(spans) else 0
    return max(before, 0), max(after, 0)


def tiled(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], scale: int, tile: int, overlap: int,
          align: int = 1, on_tile: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """fn(tile HxWxC) -> (H*scale)x(W*scale)xC float in [0, 1], applied over `image` in blended tiles."""
    height, width = image.shape[:2]
    rows, cols = tile_spans(height, tile, overlap, align), tile_spans(width, tile, overlap, align)
    channels = image.shape[2] if image.ndim == 3 else 1
    out = np.zeros((height * scale, width * scale, channels), np.float32)
    total = np.zeros((height * scale, width * scale, 1), np.float32)
    done = 0
    for r, (y0, y1) in enumerate(rows):
        wy = _ramp((y1 - y0) * scale, *(o * scale for o in _overlaps(rows, r)))
        for c, (x0, x1) in enumerate(cols):
            wx = _ramp((x1 - x0) * scale, *(o * scale for o in _overlaps(cols, c)))
            result = fn(image[y0:y1, x0:x1]).reshape((y1 - y0) * scale, (x1 - x0) * scale, channels)
            weight = (wy[:, None] * wx[None, :])[..., None]
            out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] += weight * result
            total[y0 * scale:y1 * scale, x0 * scale:x1 * scale] += weight
            done += 1
            on_tile(done, len(rows) * len(cols))
    return out / np.maximum(total, 1e-8)
