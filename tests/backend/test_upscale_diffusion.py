"""4x diffusion upscaling through diffusers' StableDiffusionUpscalePipeline, on a tiny random-weight pipeline."""

import numpy as np
import pytest
from run_stage_fixtures import make_context, run_stage
from upscale_diffusion_fixtures import tiny_sd_upscaler  # noqa: F401
from upscale_fixtures import one_thread, textured  # noqa: F401

from backend.loaders.upscale import load_upscaler
from backend.params import parse_params
from backend.pipelines.upscale import UpscaleParams, upscale_frame


def upscale(upscaler, frame, **values):
    params = parse_params(UpscaleParams, {"steps": 2, "prompt": "a dancer", **values})
    return upscale_frame(frame, params, upscaler).astype(int)


def test_same_seed_same_image_other_seed_other_image(tiny_sd_upscaler):
    upscaler = load_upscaler(tiny_sd_upscaler)
    assert upscaler.scale == 4
    frame = textured(24, 40)
    first = upscale(upscaler, frame, tile=64, overlap=0)
    assert first.shape == (96, 160, 3)
    np.testing.assert_array_equal(upscale(upscaler, frame, tile=64, overlap=0), first)
    assert np.abs(upscale(upscaler, frame, tile=64, overlap=0, seed=1) - first).mean() > 10


def test_tiles_share_the_whole_frames_noise(tiny_sd_upscaler):
    """Tiles crop one noise field, so the tiled result stays near the whole-frame one (another seed is far)."""
    upscaler = load_upscaler(tiny_sd_upscaler)
    frame = textured(24, 40)
    whole = upscale(upscaler, frame, tile=64, overlap=0)
    tiles = upscale(upscaler, frame, tile=16, overlap=8)
    other_seed = upscale(upscaler, frame, tile=64, overlap=0, seed=1)
    assert tiles.shape == whole.shape
    assert np.abs(tiles - whole).mean() < 0.3 * np.abs(other_seed - whole).mean()


def test_stage_runs_the_configured_diffusion_upscaler(tiny_sd_upscaler, tmp_path):
    ctx = make_context({1: {"color": textured(20, 28)}}, tmp_path, models={"upscaler": tiny_sd_upscaler})
    out = run_stage("upscale", {"scale": 4, "steps": 1, "tile": 16, "overlap": 4, "prompt": "a dancer"}, ctx)[1]
    assert out["color"].shape == (80, 112, 3) and out["alpha"].shape == (80, 112)
    with pytest.raises(Exception, match="4x but scale=2"):
        run_stage("upscale", {"scale": 2}, make_context({1: {"color": textured(20, 28)}}, tmp_path,
                                                         models={"upscaler": tiny_sd_upscaler}))
