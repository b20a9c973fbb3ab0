"""The normal and albedo stages through diffusers' real Marigold pipelines, on tiny random-weight models."""

import numpy as np
import pytest

from backend.errors import ModelMissing, StageError
from backend.imageio import decode_layer, encode_layer
from backend.pipelines.preview_normal import decode_normals
from depth_fixtures import one_thread, scene  # noqa: F401  (pytest fixture)
from marigold_fixtures import tiny_marigold_intrinsics, tiny_marigold_normals  # noqa: F401  (pytest fixtures)
from run_stage_fixtures import make_context, run_stage


def shot(count=4, height=40, width=56):
    """Frames of one scene with a little noise each: what a steady estimate should barely change over."""
    base = scene(height, width, seed=0).astype(np.int16)
    rng = np.random.default_rng(5)
    return {f: {"color": np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)} for f in range(1, count + 1)}


def test_normals_are_unit_camera_vectors_at_frame_size(tmp_path, tiny_marigold_normals):
    ctx = make_context(shot(2), tmp_path, models={"normal": tiny_marigold_normals})
    out = run_stage("normal", {"steps": 1}, ctx)
    stored = out[1]["normal"]
    assert stored.shape == (40, 56, 3) and stored.dtype == np.float32
    assert 0.0 <= stored.min() and stored.max() <= 1.0
    layer = get_layer("normal")
    normal = decode_normals(decode_layer(layer, encode_layer(layer, stored)))
    assert np.allclose(np.linalg.norm(normal, axis=-1), 1.0, atol=1e-3)


def get_layer(name):
    from backend.params import parse_params
    from backend.stages.base import get_stage

    stage = get_stage(name)
    return stage.layers(parse_params(stage.Params, {}), (56, 40))[name]


def test_frames_share_their_noise_and_start_from_the_previous_latent(tmp_path, tiny_marigold_normals):
    """Marigold's video recipe, as properties a random-weight model still shows: with steadiness 0, equal frames
    give equal normals (one noise for the shot, not fresh noise per frame); with steadiness > 0, a frame's
    normals depend on the frame before it."""
    same = shot(1)[1]
    other = {"color": scene(40, 56, seed=9)[:, ::-1].copy()}

    def normals(first, steadiness, folder):
        frames = {1: first, 2: same}
        ctx = make_context(frames, tmp_path / folder, models={"normal": tiny_marigold_normals})
        return run_stage("normal", {"steps": 1, "steadiness": steadiness}, ctx)

    free = normals(same, 0.0, "free")
    assert np.array_equal(free[1]["normal"], free[2]["normal"])
    assert np.array_equal(normals(other, 0.0, "free_other")[2]["normal"], free[2]["normal"])
    chained, chained_other = normals(same, 0.5, "chain"), normals(other, 0.5, "chain_other")
    assert np.array_equal(chained[1]["normal"], free[1]["normal"])  # the first frame has no predecessor
    assert np.abs(chained_other[2]["normal"] - chained[2]["normal"]).mean() > 1e-3


def test_a_resumed_job_gives_the_uninterrupted_run_frames(tmp_path, tiny_marigold_normals):
    frames = shot(4)
    whole = run_stage("normal", {"steps": 1, "steadiness": 0.5},
                      make_context(frames, tmp_path / "whole", models={"normal": tiny_marigold_normals}))
    # a job that only has frames 3 and 4 left and lost its scratch rebuilds the chain from the start
    part = run_stage("normal", {"steps": 1, "steadiness": 0.5},
                     make_context(frames, tmp_path / "part", models={"normal": tiny_marigold_normals}, todo=[4, 3]))
    for f in (3, 4):
        assert np.allclose(part[f]["normal"], whole[f]["normal"], atol=1e-5)


def test_albedo_from_an_intrinsics_model_is_srgb_colour(tmp_path, tiny_marigold_intrinsics):
    ctx = make_context(shot(2), tmp_path, models={"albedo": tiny_marigold_intrinsics})
    out = run_stage("albedo", {"steps": 1}, ctx)
    albedo = out[2]["albedo"]
    assert albedo.shape == (40, 56, 3) and albedo.dtype == np.uint8
    assert albedo.std() > 0  # a real prediction, not a constant


def test_a_normals_model_in_the_albedo_role_is_refused_by_name(tmp_path, tiny_marigold_normals):
    ctx = make_context(shot(1), tmp_path, models={"albedo": tiny_marigold_normals})
    with pytest.raises(StageError, match="albedo"):
        run_stage("albedo", {}, ctx)


def test_missing_weights_name_the_role(tmp_path):
    ctx = make_context(shot(1), tmp_path, models={"normal": str(tmp_path / "nowhere")})
    with pytest.raises(ModelMissing, match="normal"):
        run_stage("normal", {}, ctx)
