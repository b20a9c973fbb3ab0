"""Upscaling through transformers' Swin2SR on tiny random-weight models: tiled equals whole, sizes, errors."""

import numpy as np
import pytest
from stage_fixtures import make_context, run_stage
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
    with pytest.raises(ModelMissing, match="upscaler"):   # the default method needs the configured model
        run_stage("upscale", {"scale": 4}, make_context({1: {"color": textured(30, 40)}}, tmp_path, models=None))


def test_scale_that_the_model_does_not_do_is_refused_clearly(tiny_swin2sr_x2, tmp_path):
    ctx = make_context({1: {"color": textured(30, 40)}}, tmp_path, models={"upscaler": tiny_swin2sr_x2})
    with pytest.raises(StageError, match="2x but scale=4"):
        run_stage("upscale", {"scale": 4}, ctx)


def test_missing_upscaler_names_the_path(tmp_path):
    missing = tmp_path / "swin2sr-x4-not-here"
    with pytest.raises(ModelMissing) as err:
        load_upscaler(str(missing))
    assert str(missing) in str(err.value) and "'upscaler'" in str(err.value)
