"""Depth over a sequence: one mapping for the whole shot, reproduced on restart; a running fit follows drift."""

import numpy as np
from depth_fixtures import one_thread, scene, tiny_depth_anything  # noqa: F401
from stage_fixtures import make_context, run_stage

from backend.loaders.depth import load_depth_model
from backend.params import parse_params
from backend.pipelines.depth import DISPARITY, predict_depth
from backend.pipelines.depth_fit import DepthFit, DepthParams, frame_fit, next_running_fit


def static_shot(count: int) -> dict[int, dict[str, np.ndarray]]:
    """One static scene filmed with sensor noise: nothing in it moves."""
    base = scene(48, 64, seed=0).astype(np.float32)
    rng = np.random.default_rng(5)
    return {f: {"color": np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)} for f in range(1, count + 1)}


def test_static_scene_gets_one_mapping_for_every_frame_and_a_restart_reproduces_it(tiny_depth_anything, tmp_path):
    shot = static_shot(6)
    first = run_stage("depth", {}, make_context(shot, tmp_path, models={"depth": tiny_depth_anything}))
    fit = DepthFit.from_arrays(make_context(shot, tmp_path).load_scratch("depth_fit"))
    model = load_depth_model(tiny_depth_anything)
    params = parse_params(DepthParams, {})
    for f, arrays in first.items():   # the same scale and shift on every frame: nothing breathes
        np.testing.assert_array_equal(arrays["depth"], fit.apply(predict_depth(model, shot[f]["color"]), params))
    means = [first[f]["depth"].mean() for f in shot]
    assert np.ptp(means) < 0.02

    restart = make_context(shot, tmp_path, models={"depth": tiny_depth_anything}, todo=[4, 5, 6])
    again = run_stage("depth", {}, restart)
    assert restart.reads == [4, 5, 6]          # the saved fit is reused, not refitted from other frames
    for f in (4, 5, 6):
        np.testing.assert_array_equal(again[f]["depth"], first[f]["depth"])


def drifting_model_outputs(count: int, seed: int = 0):
    """A static scene (true Z fixed) seen by a model whose scale drifts by 40% over the shot, plus a noisy Z pass."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 10.0, (32, 32))
    for i in range(count):
        gain = 1.0 + 0.4 * i / (count - 1)
        raw = gain * (1.0 / z) * 1e-6
        yield raw, z * rng.normal(1.0, 0.05, z.shape), z


def test_running_fit_follows_model_drift_that_a_shot_fit_cannot():
    params = parse_params(DepthParams, {"output": "metres", "align": "reference", "near": 1, "far": 20, "smoothing": 0.5})
    frames = list(drifting_model_outputs(12))
    shot = frame_fit(DISPARITY, params, frames[0][0], frames[0][1])
    running, shot_err, running_err = shot, [], []
    for raw, noisy_z, z in frames:
        running = next_running_fit(running, DISPARITY, params, raw, noisy_z)
        shot_err.append(np.abs(shot.apply(raw, params) - z).mean())
        running_err.append(np.abs(running.apply(raw, params) - z).mean())
    assert running_err[-1] < 0.25 * shot_err[-1]


def test_smoothing_removes_the_jitter_of_per_frame_fits():
    def jitter(smoothing: float) -> float:
        params = parse_params(DepthParams, {"output": "metres", "align": "reference", "near": 1, "far": 20,
                                            "smoothing": smoothing})
        rng = np.random.default_rng(3)
        z = rng.uniform(2.0, 10.0, (16, 16))
        fit, scales = frame_fit(DISPARITY, params, 1e-6 / z, z), []
        for _ in range(30):   # a static scene whose Z pass is noisy on few pixels: per-frame fits wobble
            fit = next_running_fit(fit, DISPARITY, params, 1e-6 / z, z * rng.normal(1.0, 0.2, z.shape))
            scales.append(fit.scale)
        return float(np.std(scales) / np.mean(scales))

    assert jitter(0.9) < 0.5 * jitter(0.0)
