"""Tile planning and blending, with plain functions whose whole-image result is known."""

import numpy as np
import pytest

from backend.pipelines.tiling import tile_spans, tiled


@pytest.mark.parametrize("length,tile,overlap,align", [(100, 32, 8, 1), (257, 64, 16, 8), (3840, 256, 32, 8), (20, 32, 8, 1)])
def test_spans_cover_the_image_with_the_overlap_asked(length, tile, overlap, align):
    spans = tile_spans(length, tile, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s1 % align == 0 and s0 < s1 and e0 - s1 >= overlap   # aligned, in order, overlapping enough
    assert max(e - s for s, e in spans) < tile + align


def test_blending_reassembles_a_pointwise_function_exactly():
    rng = np.random.default_rng(0)
    image = rng.random((70, 90, 3)).astype(np.float32)

    def nearest_x2(tile):
        return np.repeat(np.repeat(tile, 2, 0), 2, 1)

    out = tiled(image, nearest_x2, 2, tile=24, overlap=8)
    np.testing.assert_allclose(out, nearest_x2(image), atol=1e-6)


def test_tiles_that_disagree_meet_without_a_step():
    """Each tile adds its own offset: the blend must turn the jump at a seam into a ramp."""
    image = np.zeros((16, 200, 1), np.float32)
    offsets = iter(range(100))

    def offset(tile):
        return tile + next(offsets) * 0.1

    row = tiled(image, offset, 1, tile=64, overlap=32)[8, :, 0]
    assert np.abs(np.diff(row)).max() < 0.1 / 4   # a 0.1 jump spread over the overlap's middle third
