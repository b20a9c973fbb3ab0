"""The shot mapping from raw depth to the depth layer: least squares to a reference, and the relative range."""

import numpy as np
import pytest

from backend.params import ParamError, parse_params
from backend.pipelines.depth import DISPARITY, METRIC
from backend.pipelines.depth_fit import DepthFit, DepthParams, FitAccumulator


def metres(**kw) -> DepthParams:
    return parse_params(DepthParams, {"output": "metres", "align": "reference", "near": 0.5, "far": 50.0, **kw})


def test_least_squares_recovers_scale_and_shift_in_disparity_space():
    rng = np.random.default_rng(0)
    raw = rng.uniform(1e-7, 3e-7, (40, 60))           # a relative model's disparity, arbitrary units
    scale, shift = 2.5e6, 0.05
    reference = 1.0 / (scale * raw + shift)          # the scene's true Z in metres
    acc = FitAccumulator(DISPARITY, metres())
    acc.add(raw, reference)
    fit = acc.result()
    assert fit.invert
    assert fit.scale == pytest.approx(scale, rel=1e-6)
    assert fit.shift == pytest.approx(shift, rel=1e-6)
    np.testing.assert_allclose(fit.apply(raw, metres()), reference, rtol=1e-5)


def test_least_squares_for_a_metric_model_fits_depth_directly():
    rng = np.random.default_rng(1)
    raw = rng.uniform(1.0, 20.0, (30, 30))
    reference = 1.7 * raw - 0.4
    acc = FitAccumulator(METRIC, metres())
    acc.add(raw, reference)
    fit = acc.result()
    assert not fit.invert
    assert (fit.scale, fit.shift) == pytest.approx((1.7, -0.4), rel=1e-6)


def test_fit_over_several_frames_matches_one_joint_solve_and_ignores_empty_sky():
    rng = np.random.default_rng(2)
    params = metres()
    acc = FitAccumulator(DISPARITY, params)
    xs, ys = [], []
    for _ in range(4):
        raw = rng.uniform(0.1, 2.0, (20, 20))
        z = 1.0 / (0.8 * raw + 0.1) * rng.normal(1.0, 0.02, raw.shape)   # noisy reference
        z[:3] = 1e10                                                      # Blender's Z where nothing was hit
        acc.add(raw, z)
        keep = z <= params.far
        xs.append(raw[keep]), ys.append(1.0 / z[keep])
    fit = acc.result()
    joint_scale, joint_shift = np.polyfit(np.concatenate(xs), np.concatenate(ys), 1)
    assert (fit.scale, fit.shift) == pytest.approx((joint_scale, joint_shift), rel=1e-9)
    assert (fit.scale, fit.shift) == pytest.approx((0.8, 0.1), rel=0.05)


def test_relative_output_maps_near_to_zero_and_far_to_one():
    params = parse_params(DepthParams, {})
    disparity = np.linspace(0.0, 1.0, 1000).reshape(20, 50)   # large disparity = near
    acc = FitAccumulator(DISPARITY, params)
    acc.add(disparity)
    out = acc.result().apply(disparity, params)
    assert out.flat[-1] < 0.05 and out.flat[0] > 0.95       # nearest -> 0, farthest -> 1 (small margin)
    assert out.flat[500] == pytest.approx(0.5, abs=0.01)
    assert np.all(np.diff(out.ravel()) <= 0)                 # order kept, nothing folded


def test_a_relative_model_cannot_give_metres_without_a_reference():
    params = parse_params(DepthParams, {"output": "metres"})
    acc = FitAccumulator(DISPARITY, params)
    acc.add(np.ones((4, 4)))
    with pytest.raises(ValueError, match="align=reference"):
        acc.result()


def test_params_reject_reference_alignment_without_metres_and_inverted_range():
    with pytest.raises(ParamError, match="output=metres"):
        parse_params(DepthParams, {"align": "reference"})
    with pytest.raises(ParamError, match="far"):
        parse_params(DepthParams, {"output": "metres", "near": 5, "far": 2})


def test_fit_survives_a_round_trip_through_scratch_arrays():
    fit = DepthFit(1.5e6, 0.02, invert=True)
    assert DepthFit.from_arrays(fit.to_arrays()) == fit
