"""Grow/shrink moves the matte's edge by the given pixels; feathering widens the soft edge monotonically."""

import cv2
import numpy as np
import pytest

from backend.params import parse_params
from backend.pipelines.matte_refine import RefineParams, refine_alpha


def disc(radius: float, size: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return (np.hypot(x - size / 2, y - size / 2) <= radius).astype(np.float32)


def refine(alpha, **values):
    return refine_alpha(alpha, parse_params(RefineParams, values))


@pytest.mark.parametrize("grow", [-6, -2, 3, 7])
def test_grow_and_shrink_move_the_edge_by_the_given_pixels(grow):
    out = refine(disc(25.0), grow=grow)
    radius = np.sqrt((out >= 0.5).sum() / np.pi)
    assert radius == pytest.approx(25.0 + grow, abs=0.75)


def soft_edge_width(alpha: np.ndarray) -> int:
    """Pixels along a row through the centre that are neither transparent nor opaque."""
    row = alpha[alpha.shape[0] // 2]
    return int(((row > 0.02) & (row < 0.98)).sum())


def test_feathering_widens_the_soft_edge_monotonically():
    hard = disc(30.0, 128)
    widths = [soft_edge_width(refine(hard, feather=f)) for f in (0.0, 1.0, 2.0, 4.0, 8.0)]
    assert widths[0] == 0
    assert all(a < b for a, b in zip(widths, widths[1:])), widths


def test_expand_then_blur_keeps_the_subject_opaque_inside():
    out = refine(disc(30.0, 128), grow=4, feather=2.0)
    inner = cv2.erode(disc(30.0, 128), np.ones((5, 5), np.uint8))
    assert out[inner > 0].min() > 0.99
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
