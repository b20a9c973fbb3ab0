"""engine=animate: the propagate stage through the real WanAnimatePipeline on a tiny random-weight model.

Same seed gives the same frames; face crops follow the pose's face keypoints; segments join without a jump
bigger than the steps inside them; a run stopped mid-shot resumes to the same frames; replace mode carries the
performer's alpha and says what it needs when the source has none; a missing model names the role.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_stage_fixtures import make_context, run_stage  # noqa: E402
from video_fixtures import build_tiny_animate  # noqa: E402

from backend.errors import StageError  # noqa: E402
from backend.params import ParamError  # noqa: E402
from backend.pipelines.video_pose import face_box, face_crop  # noqa: E402
from backend.pipelines.video_segments import plan_segments  # noqa: E402

W, H = 48, 32
TINY = {"steps": 2, "size": 48, "segment_frames": 13, "overlap": 5, "face_size": 16, "reference": "side",
        "prompt": "blue ink figure"}
NOSE, R_EYE, L_EYE = (255, 0, 0), (170, 0, 255), (255, 0, 255)


@pytest.fixture(scope="module")
def animate(tmp_path_factory):
    return build_tiny_animate(tmp_path_factory.mktemp("models") / "animate")


def performer(count: int, size: tuple[int, int] = (W, H)) -> dict[int, dict[str, np.ndarray]]:
    """A figure walking right: footage with a yellow face, its OpenPose frame (face discs, a limb) and alpha."""
    width, height = size
    frames = {}
    for i in range(count):
        x = width // 4 + i
        color = np.full((height, width, 3), 60, np.uint8)
        pose = np.zeros((height, width, 3), np.uint8)
        alpha = np.zeros((height, width), np.float32)
        cv2.rectangle(color, (x - 4, height // 3), (x + 4, height - 2), (40, 90, 200), -1)
        cv2.circle(color, (x, height // 5), 4, (240, 220, 30), -1)
        cv2.rectangle(alpha, (x - 4, height // 5 - 4), (x + 4, height - 2), 1.0, -1)
        cv2.line(pose, (x, height // 3), (x, height - 2), (0, 170, 255), 2)
        for colour, dx in ((NOSE, 0), (R_EYE, -2), (L_EYE, 2)):
            cv2.circle(pose, (x + dx, height // 5), 1, colour, -1)
        frames[i + 1] = {"color": color, "pose": pose, "alpha": alpha}
    return frames


def character() -> np.ndarray:
    image = np.full((H, W, 3), 230, np.uint8)
    cv2.circle(image, (W // 2, H // 2), 9, (200, 30, 60), -1)
    return image


def context(models, tmp: Path, frames: dict, todo=None):
    ctx = make_context(frames, tmp, models=models, todo=todo)
    image = character()
    ctx.sides = {"reference": [0]}
    ctx.read_side = lambda name, key: {"color": image.copy()}
    return ctx


def run_animate(models, tmp: Path, frames: dict, todo=None, **video) -> dict[int, dict[str, np.ndarray]]:
    ctx = context(models, tmp, frames, todo)
    return run_stage("propagate", {"engine": "animate", "video": {**TINY, **video}}, ctx)


def test_face_crops_follow_the_face_keypoints():
    frame = performer(1, (192, 128))[1]
    cx, cy, side = face_box(frame["pose"])
    assert abs(cx - 48) <= 1 and abs(cy - 25) <= 1 and side >= 0.12 * 128
    crop = face_crop(frame["color"], frame["pose"], 32)
    assert crop.shape == (32, 32, 3)
    centre = crop[12:20, 12:20].reshape(-1, 3).mean(axis=0)
    assert np.abs(centre - (240, 220, 30)).max() < 30, f"the crop's centre is not the face: {centre}"
    blank = np.zeros_like(frame["pose"])
    assert face_box(blank) is None
    assert face_crop(frame["color"], blank, 32).shape == (32, 32, 3)  # no face: the top of the frame, no error


def test_the_same_seed_gives_the_same_frames(animate, tmp_path):
    models, frames = {"animate": str(animate)}, performer(9)
    first = run_animate(models, tmp_path / "a", frames)
    again = run_animate(models, tmp_path / "b", frames)
    other = run_animate(models, tmp_path / "c", frames, seed=3)
    assert sorted(first) == list(range(1, 10))
    assert all(first[f]["color"].shape == (H, W, 3) for f in first)
    assert all(np.array_equal(first[f]["color"], again[f]["color"]) for f in first)
    assert any(not np.array_equal(first[f]["color"], other[f]["color"]) for f in first), "the seed changed nothing"


def test_segments_join_and_a_stopped_run_resumes_to_the_same_frames(animate, tmp_path):
    count = 25
    models, frames = {"animate": str(animate)}, performer(count)
    whole = run_animate(models, tmp_path / "whole", frames)
    # stop after the first segment's frames (the runner has stored them), then resume with the rest
    ctx = context(models, tmp_path / "stopped", frames)
    from backend.params import parse_params
    from backend.stages.base import get_stage

    stage = get_stage("propagate")
    params = parse_params(stage.Params, {"engine": "animate", "video": TINY})
    done = {}
    for frame, arrays in stage.run(params, ctx):
        done[frame] = arrays
        if len(done) == 10:
            break
    rest = run_animate(models, tmp_path / "stopped", frames, todo=[f for f in frames if f not in done])
    assert sorted({**done, **rest}) == sorted(whole)
    assert all(np.array_equal({**done, **rest}[f]["color"], whole[f]["color"]) for f in whole)

    order = sorted(whole)
    steps = {b: float(np.abs(whole[b]["color"].astype(np.float32) - whole[a]["color"].astype(np.float32)).mean())
             for a, b in zip(order, order[1:])}
    segments = plan_segments(count, TINY["segment_frames"], TINY["overlap"])
    assert len(segments) == 3
    boundary = [1 + s.start + p for s in segments[1:] for p in range(s.overlap + 1)]
    worst, median = max(steps[f] for f in boundary), float(np.median(list(steps.values())))
    print(f"animate: worst boundary step / median step = {worst / median:.2f}")
    assert worst <= 2.0 * median, f"a seam: {worst:.2f} against a median step of {median:.2f}"


def test_replace_mode_carries_the_performers_alpha(animate, tmp_path):
    frames = performer(5)
    ctx = context({"animate": str(animate)}, tmp_path / "b", frames)
    out = run_stage("propagate", {"engine": "animate", "layers": ["color", "alpha"],
                                  "video": {**TINY, "mode": "replace"}}, ctx)
    assert all(np.array_equal(out[f]["alpha"], frames[f]["alpha"]) for f in frames)
    no_alpha = {f: {k: v for k, v in arrays.items() if k != "alpha"} for f, arrays in frames.items()}
    with pytest.raises(StageError, match="needs the performer's alpha.*matte stage"):
        run_animate({"animate": str(animate)}, tmp_path / "c", no_alpha, mode="replace")


def test_bad_settings_and_a_missing_model_say_what_to_do(tmp_path):
    with pytest.raises(ParamError, match="video.overlap.*1 or 5"):
        run_animate({}, tmp_path / "a", performer(5), overlap=9, segment_frames=21)
    with pytest.raises(ParamError, match="video.reference.*character"):
        run_animate({}, tmp_path / "b", performer(5), reference="none")
    with pytest.raises(ParamError, match="video.segment_frames.*4k \\+ 1"):
        run_animate({}, tmp_path / "c", performer(5), segment_frames=12)
    with pytest.raises(StageError) as err:
        run_animate({}, tmp_path / "d", performer(5))
    assert err.value.code == "model_missing" and "'animate'" in str(err.value)


def test_dstage_run_animates_a_take_with_a_pose_layer(animate, tmp_path):
    """End to end from the command line: a take with colour and pose layers, the character as a side input."""
    import json

    from backend.ipc.take import Layer, Take, TakeInfo
    from spine_fixtures import dstage

    frames = performer(9)
    take = Take.create(tmp_path / "footage", TakeInfo(1, 9, W, H, layers={"color": Layer("png8"),
                                                                            "pose": Layer("png8")}))
    for f, arrays in frames.items():
        for name in ("color", "pose"):
            take.write_file(name, f, cv2.imencode(".png", arrays[name][:, :, ::-1])[1].tobytes())
    take.save_info()
    cv2.imwrite(str(tmp_path / "character.png"), character()[:, :, ::-1])
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": {"animate": str(animate)}}))
    sets = [a for k, v in TINY.items() for a in ("--set", f"video.{k}={v}")]
    result = dstage("run", "propagate", "--in", str(tmp_path / "footage"), "--out", str(tmp_path / "take"),
                    "--store", str(tmp_path / "store"), "--models", str(models), "--set", "engine=animate",
                    "--side", f"reference={tmp_path / 'character.png'}", *sets, timeout=600)
    assert result.returncode == 0, result.stderr
    written = sorted((tmp_path / "take" / "color").glob("*.png"))
    assert len(written) == 9
    images = [cv2.imread(str(p)) for p in written]
    assert all(image.shape == (H, W, 3) for image in images)
    assert not all(np.array_equal(images[0], image) for image in images[1:]), "every frame is the same"
