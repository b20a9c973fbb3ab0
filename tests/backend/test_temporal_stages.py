"""The propagate and retime stages on a real StageContext: streaming, scratch reuse, layers, errors."""

import numpy as np
import pytest
import torch

from backend.imageio import write_image
from backend.params import ParamError, parse_params
from backend.pipelines.metrics import psnr
from backend.pipelines.preview import preview_grade
from backend.sources import open_side
from backend.stages.base import StageError, all_stages, get_stage
from tests.backend.temporal_fixtures import Shot, context

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shot():
    return Shot(size=(128, 96), count=13, pan=(1.5, 0.5), disc_speed=2.0, disc_radius=22, disc_start=40)


def with_keyframes(ctx, folder):
    """The context a job with the side input `keyframes` gets: the folder as the client reads and uploads it."""
    side = open_side("keyframes", folder)
    ctx.sides = {"keyframes": side.keys}
    ctx.read_side = lambda name, key: side.read(key)
    return ctx


def run(stage, values, ctx):
    params = parse_params(stage.Params, values)
    out = dict(stage.run(params, ctx))
    assert sorted(out) == sorted(ctx.todo)  # each frame exactly once
    return out


def test_both_stages_are_registered():
    assert {"propagate", "retime"} <= set(all_stages())


def test_preview_propagation_streams_every_frame_and_follows_the_style(shot, tmp_path):
    stage = get_stage("propagate")
    ctx = context(shot, tmp_path)
    out = run(stage, {"key_interval": 6}, ctx)
    for frame, layers in out.items():
        assert set(layers) == {"color"}
        assert psnr(layers["color"], preview_grade(shot.frame(frame - 1))) > 27.0
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert "plan.npz" in saved and {"key_000001.npz", "key_000007.npz", "key_000013.npz"} <= set(saved)


def test_a_restart_reuses_the_plan_and_keyframes(shot, tmp_path):
    stage = get_stage("propagate")
    first = run(stage, {"key_interval": 6}, context(shot, tmp_path))
    reads = []
    ctx = context(shot, tmp_path, todo=[9, 10, 11])
    inner = ctx.read_input
    ctx.read_input = lambda f: (reads.append(f), inner(f))[1]
    again = run(stage, {"key_interval": 6}, ctx)
    assert len(reads) < shot.count  # no second pass over the shot to plan, no keyframe re-stylized
    for frame in (9, 10, 11):  # the gap's earlier frames are replayed, so the flows start warm as before
        assert np.array_equal(again[frame]["color"], first[frame]["color"])


def test_the_dial_through_the_stage(shot, tmp_path):
    stage = get_stage("propagate")
    steady = run(stage, {"key_interval": 6, "stability": 0.0}, context(shot, tmp_path / "a"))
    strobe = run(stage, {"key_interval": 6, "stability": 1.0}, context(shot, tmp_path / "b"))
    half = run(stage, {"key_interval": 6, "stability": 0.5}, context(shot, tmp_path / "c"))
    for frame in range(1, shot.count + 1):
        assert np.array_equal(strobe[frame]["color"], preview_grade(shot.frame(frame - 1)))
        mix = 0.5 * steady[frame]["color"].astype(np.float32) + 0.5 * strobe[frame]["color"]
        assert np.abs(half[frame]["color"] - mix).max() <= 1.0


def test_the_artists_keyframes_with_alpha_and_depth(shot, tmp_path):
    folder = tmp_path / "keys"
    for frame in (1, 7, 13):
        layers = shot.layers(frame - 1)
        write_image(folder / "color" / f"{frame:04d}.png", preview_grade(layers["color"]))
        write_image(folder / "alpha" / f"{frame:04d}.png", np.round(layers["alpha"] * 255).astype(np.uint8))
    stage = get_stage("propagate")
    values = {"keyframes_from": "folder", "layers": ["color", "alpha", "depth"]}
    layers = stage.layers(parse_params(stage.Params, values), shot.size)
    assert layers["depth"].format == "png16" and layers["depth"].far == 1.0
    assert stage.side_inputs(parse_params(stage.Params, values)).keys() == {"keyframes"}
    out = run(stage, values, with_keyframes(context(shot, tmp_path / "scratch"), folder))
    for frame in (4, 10):
        truth = shot.layers(frame - 1)
        assert psnr(out[frame]["color"], preview_grade(truth["color"])) > 27.0
        inside = out[frame]["alpha"][truth["alpha"] > 0.95]
        assert inside.mean() > 0.9  # the artist's matte followed the disc
        assert out[frame]["depth"][truth["alpha"] > 0.95].mean() < 0.4  # the source's depth rode along


def test_clear_errors(shot, tmp_path):
    stage = get_stage("propagate")
    with pytest.raises(ParamError, match="keyframes_folder"):  # a server path is no parameter any more
        parse_params(stage.Params, {"keyframes_from": "folder", "keyframes_folder": "/elsewhere"})
    with pytest.raises(StageError, match="--side keyframes="):
        run(stage, {"keyframes_from": "folder"}, context(shot, tmp_path))
    folder = tmp_path / "keys"
    write_image(folder / "0001.png", preview_grade(shot.frame(0)))
    write_image(folder / "0013.png", preview_grade(shot.frame(12)))
    with pytest.raises(StageError, match="set stability to 0"):
        run(stage, {"keyframes_from": "folder", "stability": 0.5}, with_keyframes(context(shot, tmp_path / "s"), folder))


def test_retime_rebuilds_the_dropped_frames_and_keeps_the_others(shot, tmp_path):
    stage = get_stage("retime")
    out = run(stage, {"drop_every": 2}, context(shot, tmp_path))
    for frame in range(1, shot.count + 1):
        truth = shot.frame(frame - 1)
        if (frame - 1) % 2 == 0:
            assert np.array_equal(out[frame]["color"], truth)
        else:
            assert psnr(out[frame]["color"], truth) > 27.0
