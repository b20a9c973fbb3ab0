"""engine=vace: the propagate stage through the real WanVACEPipeline on a tiny random-weight model.

Same seed gives the same frames; a pinned keyframe comes back unchanged; segments join without a jump bigger
than the steps inside them; a run killed with -9 mid-shot resumes to the same bytes; a missing model names
the role and the fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from run_stage_fixtures import make_context, run_stage  # noqa: E402
from spine_fixtures import dstage, frame_files, kill_dstage_mid_run  # noqa: E402
from video_fixtures import build_tiny_vace  # noqa: E402

from backend.errors import StageError  # noqa: E402
from backend.pipelines.video_segments import crossfade, plan_segments, shot_noise  # noqa: E402

W, H = 48, 32
TINY = {"steps": 2, "size": 48, "segment_frames": 13, "overlap": 5, "prompt": "red painted dancer"}


@pytest.fixture(scope="module")
def vace(tmp_path_factory):
    return build_tiny_vace(tmp_path_factory.mktemp("models") / "vace")


def footage(count: int) -> dict[int, dict[str, np.ndarray]]:
    """A box walking right over a gradient, with its depth (box near, background far)."""
    y, x = np.mgrid[0:H, 0:W]
    frames = {}
    for i in range(count):
        left = 4 + i
        box = (x >= left) & (x < left + 12) & (y >= 8) & (y < 28)
        color = np.stack([x * 4, y * 6, np.full_like(x, 90)], axis=2).astype(np.uint8)
        color[box] = (220, 60, 40)
        depth = np.where(box, 2.0, 6.0).astype(np.float32)
        frames[i + 1] = {"color": color, "depth": depth}
    return frames


def run_vace(models, tmp: Path, frames: dict, **video) -> dict[int, np.ndarray]:
    ctx = make_context(frames, tmp, models=models)
    out = run_stage("propagate", {"engine": "vace", "video": {**TINY, **video}}, ctx)
    return {f: arrays["color"] for f, arrays in out.items()}


def test_the_same_seed_gives_the_same_frames(vace, tmp_path):
    models, frames = {"vace": str(vace)}, footage(9)
    first = run_vace(models, tmp_path / "a", frames, pin_keyframes=False, reference="none")
    again = run_vace(models, tmp_path / "b", frames, pin_keyframes=False, reference="none")
    other = run_vace(models, tmp_path / "c", frames, pin_keyframes=False, reference="none", seed=7)
    assert sorted(first) == list(range(1, 10))
    assert all(first[f].shape == (H, W, 3) and first[f].dtype == np.uint8 for f in first)
    assert all(np.array_equal(first[f], again[f]) for f in first)
    assert any(not np.array_equal(first[f], other[f]) for f in first), "the seed changed nothing"


def test_a_pinned_keyframe_comes_back_unchanged(vace, tmp_path):
    frames = footage(12)
    rng = np.random.default_rng(3)
    keys = {1: rng.integers(0, 255, (H, W, 3), dtype=np.uint8), 10: rng.integers(0, 255, (H, W, 3), dtype=np.uint8)}
    ctx = make_context(frames, tmp_path, models={"vace": str(vace)})
    ctx.sides = {"keyframes": sorted(keys)}
    ctx.read_side = lambda name, key: {"color": keys[key].copy()}
    out = run_stage("propagate", {"engine": "vace", "keyframes_from": "folder", "video": TINY}, ctx)
    for k, image in keys.items():
        assert np.array_equal(out[k]["color"], image), f"keyframe {k} changed"
    assert not np.array_equal(out[2]["color"], keys[1]), "a frame beside a keyframe is a copy of it"


def test_a_weightless_preview_grade_is_neither_pinned_nor_the_reference(vace, tmp_path):
    out = run_vace({"vace": str(vace)}, tmp_path, footage(5))   # keyframes_from=preview by default
    assert sorted(out) == [1, 2, 3, 4, 5]
    assert not list(tmp_path.glob("key_*.npz")), "preview keyframes were made for VACE"


def frame_steps(frames: dict[int, np.ndarray]) -> dict[int, float]:
    """Mean absolute change from the frame before, per frame."""
    order = sorted(frames)
    return {b: float(np.abs(frames[b].astype(np.float32) - frames[a].astype(np.float32)).mean())
            for a, b in zip(order, order[1:])}


def test_shared_frames_of_two_segments_start_from_the_same_noise():
    whole = shot_noise(5, 0, 6, (4, 2, 3))
    later = shot_noise(5, 2, 4, (4, 2, 3), extra=1)
    assert later.shape == (1, 4, 5, 2, 3)
    assert torch.equal(later[:, :, 1:], whole[:, :, 2:]), "a latent frame's noise depends on the segment"
    assert not torch.equal(later[:, :, 0], whole[:, :, 0]), "the reference frame reuses a shot frame's noise"
    assert not torch.equal(shot_noise(6, 0, 6, (4, 2, 3)), whole)


def test_shared_frames_cross_fade_from_the_previous_segment_to_the_new():
    old, new = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 200, np.uint8)
    faded = [int(crossfade(old, new, p, 3)[0, 0, 0]) for p in range(3)]
    assert faded == [50, 100, 150]


def test_segments_join_without_a_jump(vace, tmp_path):
    # On random weights every frame is nearly independent noise, so this guards against a gross seam only
    # (a segment misplaced or repeated); the per-frame noise and cross-fade tests above pin the mechanism.
    count = 25
    out = run_vace({"vace": str(vace)}, tmp_path, footage(count), pin_keyframes=False, reference="none")
    segments = plan_segments(count, TINY["segment_frames"], TINY["overlap"])
    assert len(segments) == 3
    steps = frame_steps(out)
    # a boundary: the step into a segment's first frame and the steps through its cross-faded frames
    boundary = [1 + s.start + p for s in segments[1:] for p in range(s.overlap + 1)]
    worst = max(steps[f] for f in boundary)
    median = float(np.median(list(steps.values())))
    print(f"vace: worst boundary step / median step = {worst / median:.2f}")
    assert worst <= 2.0 * median, f"a seam: {worst:.2f} against a median step of {median:.2f}"


def test_a_missing_model_names_the_role_and_the_fix(tmp_path):
    with pytest.raises(StageError) as err:
        run_vace({}, tmp_path / "a", footage(5))
    assert "'vace'" in str(err.value) and "models file" in str(err.value)
    from backend.models import ModelRegistry

    registry = ModelRegistry.from_dict({"models": {"vace": str(tmp_path / "nowhere")}})
    with pytest.raises(StageError) as err:
        run_vace(registry, tmp_path / "b", footage(5))
    assert err.value.code == "model_missing"
    assert "'vace'" in str(err.value) and "nowhere" in str(err.value) and "To fix" in str(err.value)


def write_footage(folder: Path, frames: dict) -> Path:
    folder.mkdir(parents=True)
    for f, arrays in frames.items():
        cv2.imwrite(str(folder / f"{f:04d}.png"), arrays["color"][:, :, ::-1])
    return folder


def test_a_killed_run_resumes_to_the_same_frames(vace, tmp_path):
    folder = write_footage(tmp_path / "in", footage(25))
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": {"vace": str(vace)}}))
    sets = ["--set", "engine=vace"] + [a for k, v in TINY.items() for a in ("--set", f"video.{k}={v}")]
    sets += ["--set", "video.pin_keyframes=false", "--set", "video.reference=none"]

    def args(out: Path, store: Path) -> list[str]:
        return ["run", "propagate", "--in", str(folder), "--out", str(out), "--store", str(store),
                "--models", str(models), *sets]

    out, store = tmp_path / "take", tmp_path / "store"
    kill_dstage_mid_run(args(out, store), out / "color", 4, 300, "the first segment's frames in the take")
    partial = frame_files(out)
    assert 0 < len(partial) < 25
    resumed = dstage(*args(out, store), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stderr
    reference = dstage(*args(tmp_path / "ref", tmp_path / "store_ref"), timeout=600)
    assert reference.returncode == 0, reference.stderr
    got, want = frame_files(out), frame_files(tmp_path / "ref")
    assert len(got) == 25 and got == want


def test_the_job_identity_covers_the_video_model_and_the_reference(vace, tmp_path):
    from backend.params import parse_params
    from backend.stages.base import get_stage

    stage = get_stage("propagate")
    vace_params = parse_params(stage.Params, {"engine": "vace", "video": TINY})
    assert stage.model_roles(vace_params, {})[0] == "vace"
    other = parse_params(stage.Params, {"engine": "vace", "video": {**TINY, "model": "vace.14b"}})
    assert stage.model_roles(other, {})[0] == "vace.14b"
    animate = parse_params(stage.Params, {"engine": "animate", "video": {**TINY, "reference": "side"}})
    assert stage.model_roles(animate, {}) == ["animate", "annotators"]
    assert "reference" in stage.side_inputs(animate)
    assert stage.model_roles(parse_params(stage.Params, {}), {}) == []   # keyframes from the preview: no model


def test_frames_stream_segment_by_segment(vace, tmp_path):
    """Memory flat in shot length: the first frames come out having read only the first segment's frames."""
    from backend.params import parse_params
    from backend.stages.base import get_stage

    frames = footage(40)
    ctx = make_context(frames, tmp_path, models={"vace": str(vace)})
    stage = get_stage("propagate")
    params = parse_params(stage.Params, {"engine": "vace", "video": {**TINY, "pin_keyframes": False,
                                                                     "reference": "none"}})
    first, _ = next(iter(stage.run(params, ctx)))
    assert first == 1
    assert max(ctx.reads) <= TINY["segment_frames"], f"read up to frame {max(ctx.reads)} before the first frame"
