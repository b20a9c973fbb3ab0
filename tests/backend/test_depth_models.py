"""Depth through the real transformers code path, on tiny random-weight models saved to a temp folder."""

import numpy as np
import pytest
from depth_fixtures import one_thread, scene, tiny_depth_anything, tiny_dpt, tiny_zoedepth  # noqa: F401
from stage_fixtures import make_context, run_stage

from backend.loaders.depth import load_depth_model
from backend.loaders.missing import ModelMissing
from backend.pipelines.depth import DISPARITY, METRIC, predict_depth
from backend.pipelines.depth_fit import DepthFit


@pytest.mark.parametrize("which", ["tiny_depth_anything", "tiny_dpt"])
def test_models_load_offline_and_predict_at_frame_size(which, request):
    model = load_depth_model(request.getfixturevalue(which))
    assert model.kind == DISPARITY
    frame = scene(48, 64)
    raw = predict_depth(model, frame)
    assert raw.shape == (48, 64) and raw.dtype == np.float32
    assert np.isfinite(raw).all() and raw.std() > 0


def test_stage_aligned_to_the_z_pass_recovers_scale_shift_and_scene_distances(tiny_depth_anything, tmp_path):
    model = load_depth_model(tiny_depth_anything)
    frames = {f: {"color": scene(48, 64, seed=f)} for f in (1, 2, 3)}
    scale = 0.5 / float(np.mean([predict_depth(model, v["color"]).mean() for v in frames.values()]))
    shift = 0.1
    for inputs in frames.values():   # a Z pass that is exactly an affine map of the model's disparity
        inputs["depth"] = (1.0 / (scale * predict_depth(model, inputs["color"]) + shift)).astype(np.float32)
    ctx = make_context(frames, tmp_path, models={"depth": tiny_depth_anything})
    out = run_stage("depth", {"output": "metres", "align": "reference", "near": 0.5, "far": 20.0}, ctx)
    fit = DepthFit.from_arrays(ctx.load_scratch("depth_fit"))
    assert fit.scale == pytest.approx(scale, rel=1e-3) and fit.shift == pytest.approx(shift, rel=1e-3)
    for f, arrays in out.items():
        z = frames[f]["depth"]
        expected = np.where(z > 0, np.clip(z, 0.5, 20.0), 20.0)   # the layer's range; negative Z is beyond infinity
        np.testing.assert_allclose(arrays["depth"], expected, rtol=1e-3)


def test_a_metric_model_gives_metres_without_a_reference(tiny_zoedepth, tmp_path):
    model = load_depth_model(tiny_zoedepth)
    assert model.kind == METRIC
    frames = {1: {"color": scene(48, 64)}}
    raw = predict_depth(model, frames[1]["color"])
    assert raw.shape == (48, 64) and 0.5 <= raw.min() and raw.max() <= 10.0   # inside its bins' depth range
    ctx = make_context(frames, tmp_path, models={"depth": tiny_zoedepth})
    out = run_stage("depth", {"output": "metres", "near": 0.1, "far": 20.0}, ctx)
    np.testing.assert_allclose(out[1]["depth"], raw, rtol=1e-6)   # metres as the model gives them


def test_a_relative_model_asked_for_metres_without_a_reference_says_how_to_fix_it(tiny_depth_anything, tmp_path):
    from backend.stages.base import StageError

    ctx = make_context({1: {"color": scene()}}, tmp_path, models={"depth": tiny_depth_anything})
    with pytest.raises(StageError, match="align=reference"):
        run_stage("depth", {"output": "metres"}, ctx)


def test_missing_model_folder_names_it_and_its_role(tmp_path):
    missing = tmp_path / "no-such-depth-model"
    with pytest.raises(ModelMissing) as err:
        load_depth_model(str(missing))
    assert err.value.code == "model_missing"
    assert str(missing) in str(err.value) and "'depth'" in str(err.value)


def test_uncached_hub_id_fails_offline_with_how_to_get_it():
    with pytest.raises(ModelMissing, match="hf download nobody/tiny-depth-that-is-not-cached"):
        load_depth_model("nobody/tiny-depth-that-is-not-cached")


def test_stage_without_a_reference_layer_says_what_is_missing(tiny_depth_anything, tmp_path):
    from backend.stages.base import StageError

    ctx = make_context({1: {"color": scene()}}, tmp_path, models={"depth": tiny_depth_anything})
    with pytest.raises(StageError, match="depth layer"):
        run_stage("depth", {"output": "metres", "align": "reference"}, ctx)
