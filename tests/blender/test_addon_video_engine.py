"""Import Footage with Engine = Wan VACE, end to end: a backend running tiny random-weight Stable Diffusion
(the keyframes) and Wan VACE (every frame) models, built in the backend's environment by the backend tests'
fixtures; the card's take has every frame, and its pinned keyframes are the diffused keyframes."""

from __future__ import annotations

import os
import subprocess

import addon_fixtures  # noqa: F401
import bpy
import pytest
from addon_fixtures import BACKEND_PYTHON, REPO, BackendProcess, disable_addon, enable_addon, fresh_scene, write_clip

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
    root = tmp_path_factory.mktemp("tiny_models")
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'backend'}", "OMP_NUM_THREADS": "1"}
    subprocess.run([BACKEND_PYTHON, "-c", BUILD_TINY_MODELS, str(root)], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=600)
    process = BackendProcess(tmp_path_factory.mktemp("backend") / "store", models=root / "models.json")
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
