"""The PREVIEW depth from a silhouette: near in the middle of the figure, far at its outline and outside."""

import numpy as np
import pytest

from backend.params import ParamError, parse_params
from backend.pipelines.preview_depth import PreviewDepthParams, silhouette_depth


def disc(size=128, radius=40, centre=(64, 64)):
    yy, xx = np.mgrid[:size, :size]
    return (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius ** 2).astype(np.float32)


def test_middle_is_nearer_than_outline_and_outside_is_far():
    depth = silhouette_depth(disc(), PreviewDepthParams(radius=0.2, blur=0))
    assert depth.dtype == np.float32 and depth.shape == (128, 128)
    assert depth[64, 64] < 0.05                 # the middle reaches the near end
    assert depth[64, 64 + 38] > depth[64, 64 + 20] > depth[64, 64]  # rising toward the outline
    assert np.all(depth[disc() == 0] == 1.0)    # outside: far


def test_relief_is_steady_across_silhouette_sizes():
    """The bulge depends on distance inside, not on the silhouette's size: no pumping as a figure moves."""
    params = PreviewDepthParams(radius=0.1, blur=0)
    small, large = silhouette_depth(disc(radius=30), params), silhouette_depth(disc(radius=50), params)
    assert small[64, 64 + 30 - 6] == pytest.approx(large[64, 64 + 50 - 6], abs=0.02)


def test_relief_zero_is_flat_and_params_are_validated():
    assert np.all(silhouette_depth(disc(), PreviewDepthParams(relief=0.0)) == 1.0)
    with pytest.raises(ParamError):
        parse_params(PreviewDepthParams, {"radius": "0"})
