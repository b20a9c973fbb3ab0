"""Import Footage with Engine = Wan VACE, end to end: a backend running tiny random-weight Stable Diffusion
(the keyframes) and Wan VACE (every frame) models, built in the backend's environment by the backend tests'
fixtures; the card's take has every frame, and its pinned keyframes are the diffused keyframes."""

from __future__ import annotations


import addon_fixtures  # noqa: F401
import bpy
import pytest
from addon_fixtures import backend_with_tiny_models, disable_addon, enable_addon, fresh_scene, write_clip

from blender_addon.ipc import Take

BUILD_TINY_MODELS = """
import json, sys, torch
from pathlib import Path
torch.set_num_threads(1)
from diffuse_fixtures import build_models
from video_fixtures import build_tiny_vace
root = Path(sys.argv[1])
config = build_models(root)
config["models"]["vace"] = {"path": str(build_tiny_vace(root / "vace"))}
(root / "models.json").write_text(json.dumps(config))
"""


@pytest.fixture(scope="module")
def video_backend(tmp_path_factory):
    process = backend_with_tiny_models(tmp_path_factory, BUILD_TINY_MODELS)
    yield process
    process.stop()


def test_import_footage_with_wan_vace_makes_every_frame(video_backend, tmp_path):
    scene = fresh_scene()
    enable_addon(address=video_backend.url)
    try:
        settings = scene.stage
        settings.takes_dir = str(tmp_path / "takes")
        settings.texture_upscale = "OFF"
        settings.use_matte, settings.use_diffusion, settings.engine = True, True, "VACE"
        settings.prompt, settings.steps, settings.cfg, settings.seed = "red ink figure", 2, 1.0, 3
        settings.keyframe_mode, settings.keyframe_interval = "INTERVAL", 4
        settings.video_size = 64
        write_clip(tmp_path / "clip", 8, 64, 48, seed=2)

        assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}

        cards = [obj for obj in scene.objects if obj.get("stage_card")]
        assert len(cards) == 1
        take = Take.open(cards[0]["stage_take"])
        assert list(take.info.frames) == list(range(1, 9)) and take.missing_frames() == []
        assert {"color", "alpha"} <= set(take.info.layers)
        assert '"engine": "vace"' in str(take.info.to_json()).replace("'", '"'), take.info.to_json()
        colours = [take.path("color", f).read_bytes() for f in take.info.frames]
        assert len(set(colours)) > 1, "every frame is the same"
    finally:
        disable_addon()
