"""Import Footage with Engine = Wan VACE or Wan-Animate, end to end: a backend running tiny random-weight
Stable Diffusion (the keyframes; Animate's reference character is the first of them), controlnet_aux annotators
(Animate's pose of the performer in the footage) and Wan VACE / Wan-Animate (every frame) models, built in the
backend's environment by the backend tests' fixtures; the card's take has every frame from the video engine."""

from __future__ import annotations


import addon_fixtures  # noqa: F401
import bpy
import numpy as np
import pytest
from addon_fixtures import backend_with_tiny_models, disable_addon, enable_addon, fresh_scene, png_bytes, write_clip

from blender_addon.ipc import Take

BUILD_TINY_MODELS = """
import json, sys, torch
from pathlib import Path
torch.set_num_threads(1)
from diffuse_fixtures import build_models, openpose_weights
from video_fixtures import build_tiny_animate, build_tiny_vace
root = Path(sys.argv[1])
config = build_models(root)
config["models"]["vace"] = {"path": str(build_tiny_vace(root / "vace"))}
config["models"]["animate"] = {"path": str(build_tiny_animate(root / "animate"))}
openpose_weights(Path(config["models"]["annotators"]["path"]))  # Animate's pose of the performer
(root / "models.json").write_text(json.dumps(config))
"""


@pytest.fixture(scope="module")
def video_backend(tmp_path_factory):
    process = backend_with_tiny_models(tmp_path_factory, BUILD_TINY_MODELS)
    yield process
    process.stop()


def video_engine_settings(settings, tmp_path, engine: str, matte: bool):
    """Import Footage's settings for a tiny video-engine run: 2 steps, 64 px, keyframes every 4 frames."""
    settings.takes_dir = str(tmp_path / "takes")
    settings.texture_upscale = "OFF"
    settings.use_matte, settings.use_diffusion, settings.engine = matte, True, engine
    settings.prompt, settings.steps, settings.cfg, settings.seed = "red ink figure", 2, 1.0, 3
    settings.keyframe_mode, settings.keyframe_interval, settings.video_size = "INTERVAL", 4, 64
    return settings


@pytest.mark.parametrize("engine", ["VACE", "ANIMATE"])
def test_import_footage_with_a_video_engine_makes_every_frame(video_backend, tmp_path, engine):
    scene = fresh_scene()
    enable_addon(address=video_backend.url)
    try:
        video_engine_settings(scene.stage, tmp_path, engine, matte=True)
        count = 8 if engine == "VACE" else 5  # Animate estimates the pose of every frame: a few seconds each here
        write_clip(tmp_path / "clip", count, 64, 48, seed=2)

        assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}

        cards = [obj for obj in scene.objects if obj.get("stage_card")]
        assert len(cards) == 1
        take = Take.open(cards[0]["stage_take"])
        assert list(take.info.frames) == list(range(1, count + 1)) and take.missing_frames() == []
        assert {"color", "alpha"} <= set(take.info.layers)
        assert f'"engine": "{engine.lower()}"' in str(take.info.to_json()).replace("'", '"'), take.info.to_json()
        assert not take.info.to_json().get("preview"), "a video engine's take is not a preview"
        colours = [take.path("color", f).read_bytes() for f in take.info.frames]
        assert len(set(colours)) > 1, "every frame is the same"
    finally:
        disable_addon()


def test_animate_performs_the_artists_character_image(video_backend, tmp_path):
    scene = fresh_scene()
    enable_addon(address=video_backend.url)
    try:
        settings = video_engine_settings(scene.stage, tmp_path, "ANIMATE", matte=False)
        write_clip(tmp_path / "clip", 3, 64, 48, seed=2)
        colours = {}
        for name, rgb in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            image = np.zeros((48, 64, 3), np.uint8)
            image[8:40, 20:44] = rgb
            (tmp_path / f"{name}.png").write_bytes(png_bytes(image))
            settings.character_image = str(tmp_path / f"{name}.png")
            assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip"), name=name) == {"FINISHED"}
            card = [obj for obj in scene.objects if obj.get("stage_card") and name in obj["stage_take"]][0]
            take = Take.open(card["stage_take"])
            assert '"reference": "side"' in str(take.info.to_json()).replace("'", '"'), take.info.to_json()
            colours[name] = [take.path("color", f).read_bytes() for f in take.info.frames]
        # Same footage, prompt and seed: only the character differs, and so does every frame.
        assert all(a != b for a, b in zip(colours["red"], colours["blue"]))

        settings.character_image = str(tmp_path / "no_such_character.png")
        with pytest.raises(RuntimeError, match="character image .* is not a file"):
            bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip"))
    finally:
        disable_addon()
