"""Keyframe grids diffused by the real ControlNet pipeline (tiny random-weight models), then propagated."""

import numpy as np
import pytest
import torch

from backend.params import parse_params
from backend.pipelines.preview import preview_grade
from backend.stages.base import StageContext, get_stage
from diffuse_fixtures import registry, tiny_models  # noqa: F401  (pytest fixtures)
from tests.backend.temporal_fixtures import Shot

torch.set_num_threads(1)
KEYS = (1, 4, 7)


@pytest.fixture(scope="module")
def shot():
    return Shot(size=(64, 48), count=7, pan=(1.0, 0.5), disc_speed=1.5, disc_radius=10, disc_start=20)


def run(registry, shot, scratch, seed=7, **extra):
    stage = get_stage("propagate")
    params = parse_params(stage.Params, {
        "keyframes_from": "diffuse", "key_interval": 3, "grid_max_tiles": 6, **extra,
        "diffuse": {"prompt": "a knight", "steps": 2, "strength": 0.7, "seed": seed},
    })
    events = []
    frames = list(range(1, shot.count + 1))
    ctx = StageContext(frames=frames, todo=frames, read_input=lambda f: shot.layers(f - 1), scratch=scratch,
                       size=shot.size, models=registry, on_progress=lambda *e: events.append(e))
    return dict(stage.run(params, ctx)), events


def test_one_diffusion_pass_paints_every_keyframe_of_a_grid(registry, shot, tmp_path):
    out, events = run(registry, shot, tmp_path)
    passes = [e for e in events if e[3] == "diffusing a grid" and e[1] == 1]
    assert len(passes) == 1  # three keyframes, one grid, one pass: they share one style
    for key in KEYS:
        source = shot.frame(key - 1)
        assert not np.array_equal(out[key]["color"], source)
        assert not np.array_equal(out[key]["color"], preview_grade(source))
    assert sorted(out) == list(range(1, shot.count + 1))


def test_same_seed_same_take_other_seed_other_keyframes(registry, shot, tmp_path):
    first, _ = run(registry, shot, tmp_path / "a")
    again, _ = run(registry, shot, tmp_path / "b")
    other, _ = run(registry, shot, tmp_path / "c", seed=8)
    assert all(np.array_equal(first[f]["color"], again[f]["color"]) for f in first)
    assert not np.array_equal(first[4]["color"], other[4]["color"])


def test_the_dial_at_one_diffuses_every_frame_on_its_own(registry, shot, tmp_path):
    from backend.pipelines.diffuse import DiffuseParams, DiffusePipeline

    steady, _ = run(registry, shot, tmp_path / "a", stability=0.0)
    strobe, _ = run(registry, shot, tmp_path / "b", stability=1.0)
    alone = DiffusePipeline(registry)(
        parse_params(DiffuseParams, {"prompt": "a knight", "steps": 2, "strength": 0.7, "seed": 7}),
        image=shot.frame(1)).image
    assert np.array_equal(strobe[2]["color"], alone)  # frame 2 is exactly its own diffusion, no propagation
    assert not np.array_equal(steady[2]["color"], strobe[2]["color"])
