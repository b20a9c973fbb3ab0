"""Keyframe grids and colour matching between grids."""

import numpy as np
import pytest
import torch

from backend.pipelines.colour import delta_e, fit_transfer, lab_to_rgb, rgb_to_lab
from backend.pipelines.grid import GridParams, GridReport, grid_layout, pack, plan_grids, split, stylize_keyframes
from tests.backend.temporal_fixtures import Shot

torch.set_num_threads(1)


@pytest.mark.parametrize("count", [1, 2, 5, 6, 9])
@pytest.mark.parametrize("channels", [(), (3,), (4,)])
def test_split_inverts_pack_exactly(count, channels):
    layout = grid_layout(count, (128, 96), max_side=400)
    assert max(layout.size) <= 400
    assert layout.tile_w % 8 == 0 and layout.tile_h % 8 == 0
    rng = np.random.default_rng(count)
    for dtype in (np.uint8, np.float32):
        tiles = [rng.random((layout.tile_h, layout.tile_w) + channels).astype(dtype) * 200 for _ in range(count)]
        back = split(pack(tiles, layout), layout)
        assert len(back) == count
        for a, b in zip(tiles, back):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_layout_prefers_the_largest_tiles_under_the_limit():
    layout = grid_layout(6, (960, 540), max_side=1920)
    assert max(layout.size) <= 1920
    assert layout.cols * layout.rows >= 6
    # 6 frames of 16:9 under 1920 px: 2 columns x 3 rows gives bigger tiles than 3 x 2 or 6 x 1
    assert (layout.cols, layout.rows) == (2, 3)
    with pytest.raises(ValueError, match="raise max_side"):
        grid_layout(64, (960, 540), max_side=64)


def test_later_grids_carry_an_anchor_from_the_previous():
    grids = plan_grids(list(range(0, 120, 12)), max_tiles=4)
    assert grids[0] == [0, 12, 24, 36]
    for before, after in zip(grids, grids[1:]):
        assert after[0] == before[-1]
    assert sorted({k for g in grids for k in g}) == list(range(0, 120, 12))


def test_mkl_recovers_a_known_colour_cast():
    image = Shot().frame(0)
    lab = rgb_to_lab(image)
    # MKL is the least-displacement map between two distributions: it recovers symmetric positive casts.
    cast = np.array([[0.9, 0.05, 0.0], [0.05, 1.2, 0.15], [0.0, 0.15, 1.25]], np.float32)
    shifted = lab_to_rgb(lab @ cast.T + np.array([-6.0, 9.0, -7.0], np.float32))
    before = delta_e(shifted, image)
    assert before > 8
    after = delta_e(fit_transfer(shifted, image, "mkl").apply(shifted), image)
    assert after < 0.25 * before


class DriftingStylizer:
    """Each call (grid) comes out with a different colour cast, as separately diffused grids do."""

    casts = [(1.0, 1.0, 1.0, 0), (1.25, 0.95, 0.7, 18), (0.8, 1.1, 1.2, -15), (1.1, 0.8, 0.9, 10)]

    def __init__(self):
        self.calls = 0

    def __call__(self, grid, controls):
        r, g, b, lift = self.casts[self.calls % len(self.casts)]
        self.calls += 1
        out = grid.astype(np.float32) * np.array([r, g, b], np.float32) + lift
        return np.clip(out, 0, 255).astype(np.uint8)


# Per-channel mean/std cannot undo a cast that mixes channels; MKL, a full affine map, does much better.
@pytest.mark.parametrize("method, margin", [("mkl", 0.5), ("meanstd", 0.75)])
def test_colour_transfer_brings_the_anchor_tiles_together(method, margin):
    shot = Shot(count=40, pan=(3.0, 1.0))
    keys = list(range(0, 40, 4))
    report = GridReport()
    params = GridParams(max_side=512, max_tiles=4, colour_match=method)
    out = dict(stylize_keyframes(keys, lambda f: (shot.frame(f), {}), DriftingStylizer(), params, report))
    assert sorted(out) == keys and all(image.shape == (96, 128, 3) for image in out.values())
    assert report.frames == [12, 24]  # grids [0 4 8 12] [12 16 20 24] [24 28 32 36]
    for before, after in zip(report.delta_e_before, report.delta_e_after):
        assert before > 5
        assert after < margin * before
    assert np.mean(report.delta_e_after) < 0.8 * margin * np.mean(report.delta_e_before)
    # and the matched grids agree with the first grid's colours over the whole shot, not only the anchors
    unmatched = dict(stylize_keyframes(keys, lambda f: (shot.frame(f), {}), DriftingStylizer(),
                                       GridParams(max_side=512, max_tiles=4, colour_match="none")))
    reference = {k: DriftingStylizer()(shot.frame(k), {}) for k in keys}  # the first grid's look everywhere
    late = keys[4:]
    assert np.mean([delta_e(out[k], reference[k]) for k in late]) < 0.5 * np.mean(
        [delta_e(unmatched[k], reference[k]) for k in late])


def test_control_maps_are_packed_in_the_same_layout():
    shot = Shot(count=5, disc_speed=10)
    seen = {}

    def stylizer(grid, controls):
        seen.update(controls)
        assert controls["alpha"].shape == grid.shape[:2]
        return grid

    def read_key(f):
        layers = shot.layers(f)
        return layers["color"], {"alpha": layers["alpha"]}

    list(stylize_keyframes([0, 2, 4], read_key, stylizer, GridParams(max_side=512)))
    assert seen["alpha"].max() > 0.9  # the disc's matte arrived in the grid


def test_a_stylizer_returning_the_wrong_size_is_named():
    shot = Shot(count=3)
    with pytest.raises(ValueError, match="stylizer returned"):
        list(stylize_keyframes([0, 2], lambda f: (shot.frame(f), {}), lambda g, c: g[:10], GridParams()))
