"""Re-timing: dropped frames rebuilt by occlusion-aware flow interpolation."""

import numpy as np
import pytest
import torch

from backend.pipelines.metrics import psnr
from backend.pipelines.retime import Interpolator, dropped
from tests.backend.temporal_fixtures import Shot, region_psnr

torch.set_num_threads(1)


def test_drop_every_k_keeps_the_ends():
    assert dropped(9, 2) == [1, 3, 5, 7]
    assert dropped(10, 3) == [2, 5, 8]
    assert dropped(8, 2) == [1, 3, 5]  # the last frame stays


@pytest.fixture(scope="module")
def crossing():
    return Shot(size=(256, 128), count=9, pan=(1.0, 0.3), roll=0.2, disc_speed=4.0, disc_radius=28, disc_start=60)


def test_dropped_frames_come_back_within_a_psnr_margin(crossing):
    interpolator = Interpolator()
    for i in dropped(crossing.count, 2):
        a, b, truth = crossing.layers(i - 1), crossing.layers(i + 1), crossing.layers(i)
        rebuilt = interpolator.between({"color": a["color"]}, {"color": b["color"]}, 0.5)["color"]
        blend = ((a["color"].astype(np.float32) + b["color"]) / 2).round().astype(np.uint8)
        assert psnr(rebuilt, truth["color"]) > 28.0
        assert psnr(rebuilt, truth["color"]) > psnr(blend, truth["color"]) + 5.0


def test_occlusion_aware_interpolation_keeps_the_object_whole(crossing):
    # Around the disc, background is covered on one side and uncovered on the other: the splat's
    # visibility must pick the right frame, or the disc's edge ghosts.
    interpolator = Interpolator()
    i = 4
    a, b, truth = crossing.layers(i - 1), crossing.layers(i + 1), crossing.layers(i)
    out = interpolator.between({"color": a["color"], "alpha": a["alpha"]}, {"color": b["color"], "alpha": b["alpha"]}, 0.5)
    edge = (truth["alpha"] > 0.02) & (truth["alpha"] < 0.98)
    near = np.zeros_like(edge)
    for k in (i - 1, i, i + 1):
        near |= crossing.layers(k)["alpha"] > 0.02
    assert region_psnr(out["color"], truth["color"], near) > 25.0
    inside = truth["alpha"] > 0.98
    assert out["alpha"][inside].mean() > 0.95
    assert out["alpha"][truth["alpha"] < 0.01].mean() < 0.03
    assert edge.any()


def test_alpha_and_depth_are_interpolated_with_colour(crossing):
    a, b = crossing.layers(2), crossing.layers(4)
    out = Interpolator().between(a, b, 0.5)
    assert set(out) == {"color", "alpha", "depth"}
    assert out["depth"].dtype == np.float32 and out["color"].dtype == np.uint8
