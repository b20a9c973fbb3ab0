"""flow.warp_chosen: the chosen side's warp tile by tile equals blending the two whole warps, sampling each side
only where it is chosen."""

import cv2
import numpy as np

from backend.pipelines.flow import CHOICE_TILE, sample_map, warp, warp_chosen


def coords(seed: int, size=(300, 170)):
    rng = np.random.default_rng(seed)
    flow = cv2.GaussianBlur(rng.normal(0, 1, (size[1], size[0], 2)).astype(np.float32), (0, 0), 9) * 60
    return sample_map(flow)


def test_the_tiled_choice_equals_the_two_whole_warps_blended_and_samples_only_chosen_sides():
    rng = np.random.default_rng(0)
    first, second = (rng.random((170, 300, 3), dtype=np.float32) for _ in range(2))
    at_first, at_second = coords(1), coords(2)
    share = np.zeros((170, 300), np.float32)
    share[:, :140] = 1.0               # the first side on the left, the second on the right ...
    share[60:110, 100:180] = 0.5       # ... and a soft seam between, across tiles
    share = cv2.blur(share, (5, 5))
    for method in (cv2.INTER_CUBIC, cv2.INTER_NEAREST):
        a, b = warp(first, at_first, method), warp(second, at_second, method)
        whole = b + share[..., None] * (a - b)
        got = warp_chosen(first, second, at_first, at_second, share, method)
        assert np.abs(got - whole).max() < 1e-6
        # Tiles entirely on one side are that side's warp exactly.
        tile_rows, tile_columns = CHOICE_TILE
        assert np.array_equal(got[:tile_rows, :tile_columns], a[:tile_rows, :tile_columns])
        assert np.array_equal(got[:tile_rows, -40:], b[:tile_rows, -40:])
    # A side is not sampled where it is not chosen: poison it there and nothing leaks.
    poisoned = np.full_like(second, np.nan)
    got = warp_chosen(first, poisoned, at_first, at_second, np.ones_like(share), cv2.INTER_CUBIC)
    assert np.array_equal(got, warp(first, at_first, cv2.INTER_CUBIC))
    got = warp_chosen(first, poisoned, at_first, at_second, share, cv2.INTER_CUBIC)
    # The top-left tile takes the first side only; from 2 tiles in, every tile takes the (poisoned) second.
    assert np.isfinite(got[:tile_rows, :tile_columns]).all() and np.isnan(got[:, 2 * tile_columns:]).all()
