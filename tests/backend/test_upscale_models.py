"""Upscaling through transformers' Swin2SR on tiny random-weight models: tiled equals whole, sizes, errors."""

import numpy as np
import pytest
from run_stage_fixtures import make_context, run_stage
from upscale_fixtures import one_thread, textured, tiny_swin2sr_x2, tiny_swin2sr_x4  # noqa: F401

from backend.loaders.missing import ModelMissing
from backend.loaders.upscale import load_upscaler
from backend.params import parse_params
from backend.pipelines.upscale import UpscaleParams, upscale_frame
from backend.stages.base import StageError


@pytest.mark.parametrize("scale,fixture", [(2, "tiny_swin2sr_x2"), (4, "tiny_swin2sr_x4")])
def test_tiled_upscale_equals_the_whole_image_pass(scale, fixture, request):
    upscaler = load_upscaler(request.getfixturevalue(fixture))
    frame = textured(60, 84)
    whole = upscale_frame(frame, parse_params(UpscaleParams, {"scale": scale, "tile": 128, "overlap": 0}), upscaler)
    tiles = upscale_frame(frame, parse_params(UpscaleParams, {"scale": scale, "tile": 32, "overlap": 12}), upscaler)
    assert whole.shape == (60 * scale, 84 * scale, 3) and tiles.shape == whole.shape and tiles.dtype == np.uint8
    diff = np.abs(tiles.astype(int) - whole.astype(int))
    assert diff.max() <= 1                    # seams invisible: at most one 8-bit level anywhere

    butted = upscale_frame(frame, parse_params(UpscaleParams, {"scale": scale, "tile": 32, "overlap": 0}), upscaler)
    assert np.abs(butted.astype(int) - whole.astype(int)).max() > 2 * max(diff.max(), 1)   # what overlap buys


def test_stage_upscales_colour_and_resizes_alpha(tiny_swin2sr_x2, tmp_path):
    alpha = np.zeros((40, 48), np.float32)
    alpha[10:30, 12:36] = 1.0
    ctx = make_context({1: {"color": textured(40, 48), "alpha": alpha}}, tmp_path, models={"upscaler": tiny_swin2sr_x2})
    out = run_stage("upscale", {"scale": 2, "tile": 32, "overlap": 8}, ctx)[1]
    assert out["color"].shape == (80, 96, 3) and out["alpha"].shape == (80, 96)
    assert out["alpha"][30, 40] == pytest.approx(1.0) and out["alpha"][5, 5] == pytest.approx(0.0)


def test_resample_only_when_asked_needs_no_model(tmp_path):
    ctx = make_context({1: {"color": textured(30, 40)}}, tmp_path, models=None)
    out = run_stage("upscale", {"method": "resample", "scale": 4}, ctx)[1]
    assert out["color"].shape == (120, 160, 3)
    with pytest.raises(StageError, match="'upscaler' not found") as err:   # the default method needs a model
        run_stage("upscale", {"scale": 4}, make_context({1: {"color": textured(30, 40)}}, tmp_path, models={}))
    assert err.value.code == "model_missing"


def test_scale_that_the_model_does_not_do_is_refused_clearly(tiny_swin2sr_x2, tmp_path):
    ctx = make_context({1: {"color": textured(30, 40)}}, tmp_path, models={"upscaler": tiny_swin2sr_x2})
    with pytest.raises(StageError, match="2x but scale=4"):
        run_stage("upscale", {"scale": 4}, ctx)


def test_missing_upscaler_names_the_path(tmp_path):
    missing = tmp_path / "swin2sr-x4-not-here"
    with pytest.raises(ModelMissing) as err:
        load_upscaler(str(missing))
    assert str(missing) in str(err.value) and "'upscaler'" in str(err.value)


def test_cancel_stops_between_tiles(tiny_swin2sr_x2, tmp_path):
    from backend.stages.base import Cancelled

    ctx = make_context({1: {"color": textured(64, 64)}}, tmp_path, models={"upscaler": tiny_swin2sr_x2})
    steps = []
    ctx.on_progress = lambda frame, step, total, message: steps.append(step)
    ctx.is_cancelled = lambda: len(steps) >= 2
    with pytest.raises(Cancelled):
        run_stage("upscale", {"scale": 2, "tile": 16, "overlap": 4}, ctx)
    assert steps == [1, 2]   # of the 25 tiles, the third never ran


def test_scale_defaults_to_the_models_own_factor(tiny_swin2sr_x2, tmp_path):
    ctx = make_context({1: {"color": textured(20, 24)}}, tmp_path, models={"upscaler": tiny_swin2sr_x2})
    assert run_stage("upscale", {}, ctx)[1]["color"].shape == (40, 48, 3)


def test_albedo_goes_through_the_upscaler_and_normals_stay_unit_vectors(tiny_swin2sr_x2, tmp_path):
    from backend.pipelines.preview_normal import PreviewNormalParams, decode_normals, encode_normals, preview_normals

    colour = textured(24, 32)
    alpha = np.zeros((24, 32), np.float32)
    alpha[4:20, 8:24] = 1.0
    normal = encode_normals(preview_normals(alpha, None, PreviewNormalParams(relief=0.3)))
    albedo = colour[..., ::-1].copy()
    ctx = make_context({1: {"color": colour, "alpha": alpha, "albedo": albedo, "normal": normal}}, tmp_path,
                       models={"upscaler": tiny_swin2sr_x2})
    out = run_stage("upscale", {"tile": 16, "overlap": 4, "layers": ["albedo", "normal"]}, ctx)[1]
    same_model = upscale_frame(albedo, parse_params(UpscaleParams, {"tile": 16, "overlap": 4}), load_upscaler(tiny_swin2sr_x2))
    assert np.array_equal(out["albedo"], same_model)  # the albedo is upscaled like the colour, by the model
    assert out["normal"].shape == (48, 64, 3)
    assert np.allclose(np.linalg.norm(decode_normals(out["normal"]), axis=-1), 1.0, atol=1e-3)
    assert decode_normals(out["normal"])[24, 17, 0] < -0.3  # the left edge still faces left, at the new size
    with pytest.raises(StageError, match="no 'albedo' layer"):
        run_stage("upscale", {"method": "resample", "scale": 2, "layers": ["albedo"]},
                  make_context({1: {"color": colour}}, tmp_path / "x"))
