"""The diffuse stage: registered, streams frames, reads control layers, reproduces on resume."""

from __future__ import annotations

import numpy as np
import pytest

from backend.params import parse_params
from backend.stages.base import Cancelled, StageContext, get_stage
from backend.stages.diffuse import frame_seed

from diffuse_fixtures import registry, tiny_models  # noqa: F401  (pytest fixtures)

W, H = 60, 44  # not a multiple of 8: the stage must hand back the source size


def source(frame: int, with_depth: bool = True) -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:H, 0:W]
    color = np.zeros((H, W, 3), np.uint8)
    color[..., 0] = (x * 4 + frame * 10) % 256
    color[..., 1] = y * 5
    color[..., 2] = 90
    out = {"color": color}
    if with_depth:
        depth = np.full((H, W), 10.0, np.float32)
        depth[(x - 20 - frame) ** 2 + (y - 22) ** 2 < 100] = 4.0
        out["depth"] = depth
    return out


def context(registry, tmp_path, frames, todo=None, with_depth=True, **kw) -> StageContext:
    return StageContext(
        frames=frames, todo=list(todo if todo is not None else frames),
        read_input=lambda f: source(f, with_depth), scratch=tmp_path, size=(W, H), models=registry, **kw,
    )


def stage_params(**values):
    stage = get_stage("diffuse")
    base = {"prompt": "a knight", "steps": 2, "strength": 0.6, "frame_seeds": "per_frame", "seed": 42,
            "controls": [{"type": "depth"}]}
    base.update(values)
    return stage, parse_params(stage.Params, base)


def test_stage_is_registered_and_writes_a_colour_layer():
    stage = get_stage("diffuse")
    assert stage.name == "diffuse" and set(stage.layers(parse_params(stage.Params, {}), (W, H))) == {"color"}


def test_a_resumed_job_reproduces_an_uninterrupted_one(registry, tmp_path):
    stage, p = stage_params()
    whole = dict(stage.run(p, context(registry, tmp_path, [1, 2, 3])))
    resumed = dict(stage.run(p, context(registry, tmp_path, [1, 2, 3], todo=[3, 2])))
    assert sorted(whole) == [1, 2, 3] and sorted(resumed) == [2, 3]
    for f in (2, 3):
        assert whole[f].keys() == {"color"} and whole[f]["color"].shape == (H, W, 3)
        assert np.array_equal(whole[f]["color"], resumed[f]["color"])
    assert frame_seed(42, 2, "per_frame") != frame_seed(42, 3, "per_frame")
    assert frame_seed(42, 2, "fixed") == frame_seed(42, 3, "fixed") == 42


def test_the_sources_depth_layer_drives_the_depth_controlnet(registry, tmp_path):
    stage, p = stage_params()
    with_layer = dict(stage.run(p, context(registry, tmp_path, [1])))[1]["color"]
    again = dict(stage.run(p, context(registry, tmp_path, [1])))[1]["color"]
    _, no_control = stage_params(controls=[])
    plain = dict(stage.run(no_control, context(registry, tmp_path, [1], with_depth=False)))[1]["color"]
    assert np.array_equal(with_layer, again)
    assert np.abs(with_layer.astype(int) - plain.astype(int)).mean() > 0.5


def test_progress_and_cancel_reach_the_runner(registry, tmp_path):
    stage, p = stage_params(controls=[])
    events = []
    ctx = context(registry, tmp_path, [1, 2], on_progress=lambda f, s, t, m: events.append((f, s, t)),
                  is_cancelled=lambda: len(events) >= 1)
    with pytest.raises(Cancelled):
        list(stage.run(p, ctx))
    assert events == [(1, 1, 1)]  # frame 1's only step reported, then nothing more ran
